"""What crosses service boundaries: the Celery app, queue and task names, payloads, the saga."""

from ._app import create_celery_app
from ._failpoints import InjectedFault, failpoint
from ._ledger import LedgerState, SagaAborted, StepLedgerMixin, claim_step, tombstone_step
from ._names import Queue, Step, TaskName, queue_of
from ._payloads import RegistrationPayload
from ._registration import PIVOT, compensation_chain, registration_saga, step_task_id, welcome_chain
from ._service import RequestIdMiddleware, Storable, add_error_handlers, add_probes, broker_ready, configure_logging, database_ready
from ._task import SagaTask

__all__ = [
    "PIVOT",
    "InjectedFault",
    "LedgerState",
    "Queue",
    "RegistrationPayload",
    "RequestIdMiddleware",
    "SagaAborted",
    "SagaTask",
    "Step",
    "StepLedgerMixin",
    "Storable",
    "TaskName",
    "add_error_handlers",
    "add_probes",
    "broker_ready",
    "claim_step",
    "compensation_chain",
    "configure_logging",
    "create_celery_app",
    "database_ready",
    "failpoint",
    "queue_of",
    "registration_saga",
    "step_task_id",
    "tombstone_step",
    "welcome_chain",
]
