from functools import cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import DEV_SIGNING_KEY, IdempotencyRetentionSeconds, Secret, SecretKind, load_settings, password_in_url, refuse_weak_secrets


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILE_")

    database_url: str
    broker_url: str
    # "production" refuses to start with a placeholder, short or repetitive secret (saga/_settings.py).
    environment: Literal["development", "production"] = "development"
    # On: every endpoint wants an access token whose subject is the user addressed (401/403).
    # Off by default, as the contract's scripts call these endpoints without tokens.
    require_access_token: bool = False
    # The users service's signing key (USERS_JWT_SIGNING_KEY): tokens are verified here, locally.
    jwt_signing_key: str = DEV_SIGNING_KEY
    # The retention process (python -m profile_svc.retention) prunes ledger rows whose last change
    # is older than this; it may not be shorter than a saga's messages live (saga/_retention.py).
    ledger_retention_seconds: IdempotencyRetentionSeconds = 30 * 24 * 3600
    # Its pause between batches; touched on every pass when set (the container's healthcheck reads its age).
    retention_interval_seconds: float = 1.0
    retention_heartbeat_file: Path | None = None

    # Prometheus metrics of the worker (`celery worker` only), served from its main process on this
    # port when set, with PROMETHEUS_MULTIPROC_DIR naming the worker's own directory (saga/_metrics.py).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_address: str = "127.0.0.1"  # where worker and relay metrics listen (0.0.0.0 in a container)

    def secrets(self) -> list[Secret]:
        # The signing key only when tokens are required: otherwise this service never uses it.
        key = self.jwt_signing_key if self.require_access_token else None
        return [
            Secret("PROFILE_JWT_SIGNING_KEY", key, SecretKind.SIGNING_KEY),
            password_in_url("PROFILE_DATABASE_URL", self.database_url),
            password_in_url("PROFILE_BROKER_URL", self.broker_url),
        ]

    @model_validator(mode="after")
    def _secrets_fit_the_environment(self) -> Self:
        refuse_weak_secrets(self.environment, self.secrets())
        return self


@cache
def get_settings() -> Settings:
    return load_settings(Settings)
