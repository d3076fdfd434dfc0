"""What each kind of saga does to the account, beside its declaration in ``saga``: the table the engine reads.

For each kind: the payload its steps on other services receive, what passing the pivot makes
final, and what a compensated saga leaves the account as (as it was before the saga). A saga
that never compensates has no ``on_failure``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from saga import DeletionPayload, PurgePayload, RegistrationPayload, SagaKind

from .models import AccountStatus, RegistrationStatus, UserAccount, purged_email


@dataclass(frozen=True)
class Effects:
    payload: Callable[[UserAccount], dict[str, object]]
    on_pivot: Callable[[UserAccount], None]
    on_failure: Callable[[UserAccount], None] | None = None


def _identity(user: UserAccount) -> dict[str, object]:
    return {"user_id": user.id, "email": user.email, "first_name": user.first_name, "last_name": user.last_name}


def _registration_payload(user: UserAccount) -> dict[str, object]:
    return RegistrationPayload.model_validate(_identity(user)).model_dump(mode="json")


def _deletion_payload(user: UserAccount) -> dict[str, object]:
    return DeletionPayload.model_validate({**_identity(user), "restore_until": user.purge_after}).model_dump(mode="json")


def _purge_payload(user: UserAccount) -> dict[str, object]:
    return PurgePayload(user_id=user.id).model_dump(mode="json")


def _registration_completed(user: UserAccount) -> None:
    user.registration_status = RegistrationStatus.COMPLETED


def _registration_failed(user: UserAccount) -> None:
    user.registration_status = RegistrationStatus.FAILED  # frees the email for a new attempt


def _deleted(user: UserAccount) -> None:
    user.account_status = AccountStatus.DELETED


def _active(user: UserAccount) -> None:
    user.account_status = AccountStatus.ACTIVE
    user.deleted_at = user.purge_after = None


def _purged(user: UserAccount) -> None:
    user.account_status = AccountStatus.PURGED
    user.email = purged_email(user.id)  # the email is free for a new registration
    user.first_name = user.last_name = user.password_hash = ""


EFFECTS: dict[str, Effects] = {
    SagaKind.REGISTRATION: Effects(_registration_payload, on_pivot=_registration_completed, on_failure=_registration_failed),
    SagaKind.DELETION: Effects(_deletion_payload, on_pivot=_deleted, on_failure=_active),
    SagaKind.RESTORE: Effects(_registration_payload, on_pivot=_active, on_failure=_deleted),
    SagaKind.PURGE: Effects(_purge_payload, on_pivot=_purged),
}
