"""The profile service's retention job: prunes ledger rows past their retention, a batch a pass.

The users and emails services prune in their relays; this service has no relay, so this small
loop (the same one, saga.run_relay) runs beside its worker. Run: python -m profile_svc.retention
"""

from saga import Pruner, Retention, make_sessionmaker, run_relay

from .config import Settings, get_settings
from .models import SagaStepLog


def retentions(settings: Settings) -> list[Retention]:
    """What it prunes: ledger rows by their last change."""
    return [Retention(SagaStepLog, lambda cutoff: SagaStepLog.updated_at < cutoff, settings.ledger_retention_seconds)]


def main() -> None:
    settings = get_settings()
    pruner = Pruner(make_sessionmaker(settings.database_url), retentions(settings))
    run_relay("profile retention", pruner.one_pass, settings.retention_interval_seconds, settings.retention_heartbeat_file)


if __name__ == "__main__":
    main()
