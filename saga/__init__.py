"""What crosses service boundaries: the Celery app, queue and task names, payloads, the saga."""

from ._app import create_celery_app
from ._failpoints import InjectedFault, failpoint
from ._ledger import LedgerState, SagaAborted, StepLedgerMixin, claim_step, tombstone_step
from ._names import Queue, Step, TaskName, queue_of
from ._payloads import RegistrationPayload
from ._registration import PIVOT, compensation_chain, registration_saga, step_task_id, welcome_chain
from ._service import INSECURE_DEFAULT_PASSWORD, add_error_handlers, add_probes, broker_ready, database_ready, warn_on_insecure_default
from ._task import SagaTask

__all__ = [
    "INSECURE_DEFAULT_PASSWORD",
    "PIVOT",
    "InjectedFault",
    "LedgerState",
    "Queue",
    "RegistrationPayload",
    "SagaAborted",
    "SagaTask",
    "Step",
    "StepLedgerMixin",
    "TaskName",
    "add_error_handlers",
    "add_probes",
    "broker_ready",
    "claim_step",
    "compensation_chain",
    "create_celery_app",
    "database_ready",
    "failpoint",
    "queue_of",
    "registration_saga",
    "step_task_id",
    "tombstone_step",
    "warn_on_insecure_default",
    "welcome_chain",
]
