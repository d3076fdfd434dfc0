"""Queue and task names: the only way services refer to each other's work."""

from enum import StrEnum


class Queue(StrEnum):
    USERS = "users"
    PROFILE = "profile"
    EMAILS = "emails"
    # The emails service's mail deliveries, on their own workers: an SMTP server that hangs holds
    # these, never the service's saga steps (docs/architecture.md, "Queues").
    MAIL = "mail"


class RegistrationStep(StrEnum):
    """Steps of the registration saga, in order. The pivot is COMPLETE_REGISTRATION."""

    CREATE_PROFILE = "create_profile"
    RECORD_ADDRESS = "record_address"
    COMPLETE_REGISTRATION = "complete_registration"
    SEND_WELCOME_EMAIL = "send_welcome_email"


class SagaKind(StrEnum):
    """The sagas the users service orchestrates; its saga log records each with its kind."""

    REGISTRATION = "registration"
    DELETION = "deletion"
    RESTORE = "restore"
    PURGE = "purge"


class DeletionStep(StrEnum):
    """Steps of the account-deletion saga, in order. The pivot is COMPLETE_DELETION."""

    SEND_GOODBYE_EMAIL = "send_goodbye_email"
    ARCHIVE_PROFILE = "archive_profile"
    ERASE_ADDRESS = "erase_address"
    COMPLETE_DELETION = "complete_deletion"


class RestoreStep(StrEnum):
    """Steps of the restore saga, in order. The pivot is COMPLETE_RESTORE."""

    RESTORE_PROFILE = "restore_profile"
    RECALL_ADDRESS = "recall_address"
    COMPLETE_RESTORE = "complete_restore"


class PurgeStep(StrEnum):
    """Steps of the purge saga, in order: nothing to compensate, every step retries until done."""

    PURGE_PROFILE = "purge_profile"
    PURGE_ADDRESS = "purge_address"
    PURGE_ACCOUNT = "purge_account"


class TaskName(StrEnum):
    # users: the orchestrator's own steps and the saga log
    COMPLETE_REGISTRATION = "users.complete_registration"
    BEGIN_COMPENSATION = "users.begin_compensation"
    RECORD_STEP_EVENTS = "users.record_step_events"
    COMPLETE_DELETION = "users.complete_deletion"
    COMPLETE_RESTORE = "users.complete_restore"
    PURGE_ACCOUNT = "users.purge_account"
    FAIL_SAGA = "users.fail_saga"  # last link of every compensation chain
    # Deprecated names, still handled for messages queued by an older release (docs/architecture.md)
    FAIL_REGISTRATION = "users.fail_registration"  # an alias of FAIL_SAGA
    RECORD_STEP_EVENT = "users.record_step_event"  # one report; now RECORD_STEP_EVENTS
    # profile
    CREATE_PROFILE = "profile.create_profile"
    REMOVE_PROFILE = "profile.remove_profile"
    ARCHIVE_PROFILE = "profile.archive_profile"
    UNDO_ARCHIVE_PROFILE = "profile.undo_archive_profile"
    RESTORE_PROFILE = "profile.restore_profile"
    UNDO_RESTORE_PROFILE = "profile.undo_restore_profile"
    PURGE_PROFILE = "profile.purge_profile"
    # emails
    RECORD_ADDRESS = "emails.record_address"
    FORGET_ADDRESS = "emails.forget_address"
    SEND_WELCOME_EMAIL = "emails.send_welcome_email"
    DELIVER_MESSAGE = "emails.deliver_message"
    SEND_GOODBYE_EMAIL = "emails.send_goodbye_email"
    ERASE_ADDRESS = "emails.erase_address"
    UNDO_ERASE_ADDRESS = "emails.undo_erase_address"
    RECALL_ADDRESS = "emails.recall_address"
    UNDO_RECALL_ADDRESS = "emails.undo_recall_address"
    PURGE_ADDRESS = "emails.purge_address"


# Tasks that wait on something outside the system run on a queue of their own, apart from their service's.
_OWN_QUEUE: dict[str, Queue] = {
    TaskName.SEND_WELCOME_EMAIL: Queue.MAIL,
    TaskName.DELIVER_MESSAGE: Queue.MAIL,
}


def queue_of(task_name: str) -> Queue:
    """A task runs on the queue of the service that owns it (its name's prefix), or on its own (``_OWN_QUEUE``)."""
    return _OWN_QUEUE.get(task_name) or Queue(task_name.split(".", 1)[0])
