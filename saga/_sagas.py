"""The four sagas, declared (see ``_declaration`` for what a declaration turns into).

    registration: create_profile -> record_address -> complete_registration (pivot) -> send_welcome_email
                    (profile)        (emails)          (users)                          (emails)
    deletion:     send_goodbye_email -> archive_profile -> erase_address -> complete_deletion (pivot)
                    (emails)             (profile)          (emails)         (users)
    restore:      restore_profile -> recall_address -> complete_restore (pivot)
                    (profile)         (emails)          (users)
    purge:        purge_profile -> purge_address -> purge_account
                    (profile)       (emails)        (users)

A sent mail cannot be unsent: the welcome mail comes after the registration's pivot and only
retries; the goodbye mail has no undo, and comes first because the emails service must still know
the address to write to. The purge runs only after the restore period ended; it has nothing to
compensate, so its steps only retry and the watchdog re-drives it until it is done.
"""

from ._declaration import SagaDeclaration
from ._declaration import SagaStepDeclaration as S
from ._names import DeletionStep, PurgeStep, RegistrationStep, RestoreStep, SagaKind, TaskName

REGISTRATION = SagaDeclaration(
    kind=SagaKind.REGISTRATION,
    steps=(
        S(RegistrationStep.CREATE_PROFILE, TaskName.CREATE_PROFILE, undo=TaskName.REMOVE_PROFILE),
        S(RegistrationStep.RECORD_ADDRESS, TaskName.RECORD_ADDRESS, undo=TaskName.FORGET_ADDRESS),
        S(RegistrationStep.COMPLETE_REGISTRATION, TaskName.COMPLETE_REGISTRATION),
        S(RegistrationStep.SEND_WELCOME_EMAIL, TaskName.SEND_WELCOME_EMAIL),
    ),
    pivot=RegistrationStep.COMPLETE_REGISTRATION,
)

DELETION = SagaDeclaration(
    kind=SagaKind.DELETION,
    steps=(
        S(DeletionStep.SEND_GOODBYE_EMAIL, TaskName.SEND_GOODBYE_EMAIL),
        S(DeletionStep.ARCHIVE_PROFILE, TaskName.ARCHIVE_PROFILE, undo=TaskName.UNDO_ARCHIVE_PROFILE),
        S(DeletionStep.ERASE_ADDRESS, TaskName.ERASE_ADDRESS, undo=TaskName.UNDO_ERASE_ADDRESS),
        S(DeletionStep.COMPLETE_DELETION, TaskName.COMPLETE_DELETION),
    ),
    pivot=DeletionStep.COMPLETE_DELETION,
)

RESTORE = SagaDeclaration(
    kind=SagaKind.RESTORE,
    steps=(
        S(RestoreStep.RESTORE_PROFILE, TaskName.RESTORE_PROFILE, undo=TaskName.UNDO_RESTORE_PROFILE),
        S(RestoreStep.RECALL_ADDRESS, TaskName.RECALL_ADDRESS, undo=TaskName.UNDO_RECALL_ADDRESS),
        S(RestoreStep.COMPLETE_RESTORE, TaskName.COMPLETE_RESTORE),
    ),
    pivot=RestoreStep.COMPLETE_RESTORE,
)

PURGE = SagaDeclaration(
    kind=SagaKind.PURGE,
    steps=(
        S(PurgeStep.PURGE_PROFILE, TaskName.PURGE_PROFILE),
        S(PurgeStep.PURGE_ADDRESS, TaskName.PURGE_ADDRESS),
        S(PurgeStep.PURGE_ACCOUNT, TaskName.PURGE_ACCOUNT),
    ),
    pivot=PurgeStep.PURGE_ACCOUNT,
    compensated=False,
)

SAGAS = {declaration.kind: declaration for declaration in (REGISTRATION, DELETION, RESTORE, PURGE)}
