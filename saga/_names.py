"""Queue and task names: the only way services refer to each other's work."""

from enum import StrEnum


class Queue(StrEnum):
    USERS = "users"
    PROFILE = "profile"
    EMAILS = "emails"


class Step(StrEnum):
    """Steps of the registration saga, in order. The pivot is COMPLETE_REGISTRATION."""

    CREATE_PROFILE = "create_profile"
    RECORD_ADDRESS = "record_address"
    COMPLETE_REGISTRATION = "complete_registration"
    SEND_WELCOME_EMAIL = "send_welcome_email"


class TaskName(StrEnum):
    # users: the orchestrator's own steps and the saga log
    COMPLETE_REGISTRATION = "users.complete_registration"
    BEGIN_COMPENSATION = "users.begin_compensation"
    FAIL_REGISTRATION = "users.fail_registration"
    RECORD_STEP_EVENT = "users.record_step_event"
    # profile
    CREATE_PROFILE = "profile.create_profile"
    REMOVE_PROFILE = "profile.remove_profile"
    # emails
    RECORD_ADDRESS = "emails.record_address"
    FORGET_ADDRESS = "emails.forget_address"
    SEND_WELCOME_EMAIL = "emails.send_welcome_email"
    DELIVER_MESSAGE = "emails.deliver_message"


def queue_of(task_name: str) -> Queue:
    """A task runs on the queue of the service that owns it (its name's prefix)."""
    return Queue(task_name.split(".", 1)[0])
