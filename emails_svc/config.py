from functools import cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import DEV_SIGNING_KEY, IdempotencyRetentionSeconds, Secret, SecretKind, load_settings, password_in_url, refuse_weak_secrets

from .throttle import parse_rates


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMAILS_")

    database_url: str
    broker_url: str
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Registration <no-reply@example.com>"
    # Undelivered mail is retried with exponential backoff up to this delay, for ever.
    retry_backoff_max_seconds: int = 60
    # Touched on every relay pass when set: the container's healthcheck reads its age.
    relay_heartbeat_file: Path | None = None
    relay_interval_seconds: float = 2.0
    # The relay prunes ledger rows whose last change is older than this, and sent or failed mail
    # written longer ago (a welcome or goodbye mail's row keeps its step from sending it twice);
    # neither may be shorter than a saga's messages live (saga/_retention.py). Queued mail stays.
    ledger_retention_seconds: IdempotencyRetentionSeconds = 30 * 24 * 3600
    mail_retention_seconds: IdempotencyRetentionSeconds = 30 * 24 * 3600
    # POST /v1/emails/send/ per client address and per recipient user, in the limits notation
    # ("5/minute;50/day": each must hold); past one, 429 with Retry-After. Empty: no limit.
    send_rate_per_address: str = "20/minute;200/hour"
    send_rate_per_recipient: str = "5/minute;50/day"
    # "production" refuses to start with a placeholder, short or repetitive secret (saga/_settings.py).
    environment: Literal["development", "production"] = "development"
    # On: sending and reading mail wants an access token whose subject is the user addressed (401/403).
    # Off by default, as the contract's scripts call these endpoints without tokens.
    require_access_token: bool = False
    # The users service's signing key (USERS_JWT_SIGNING_KEY): tokens are verified here, locally.
    jwt_signing_key: str = DEV_SIGNING_KEY

    # Prometheus metrics of the worker (`celery worker` only), served from its main process on this
    # port when set, with PROMETHEUS_MULTIPROC_DIR naming the worker's own directory (saga/_metrics.py).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_address: str = "127.0.0.1"  # where worker and relay metrics listen (0.0.0.0 in a container)

    def secrets(self) -> list[Secret]:
        # The signing key only when tokens are required: otherwise this service never uses it.
        key = self.jwt_signing_key if self.require_access_token else None
        return [
            Secret("EMAILS_JWT_SIGNING_KEY", key, SecretKind.SIGNING_KEY),
            password_in_url("EMAILS_DATABASE_URL", self.database_url),
            password_in_url("EMAILS_BROKER_URL", self.broker_url),
            Secret("EMAILS_SMTP_PASSWORD", self.smtp_password, SecretKind.EXTERNAL),
        ]

    @field_validator("send_rate_per_address", "send_rate_per_recipient")
    @classmethod
    def _rates_parse(cls, value: str) -> str:
        try:
            parse_rates(value)
        except ValueError as exc:
            raise ValueError(f"not a rate in the limits notation, such as '5/minute;50/day': {exc}") from None
        return value

    @model_validator(mode="after")
    def _secrets_fit_the_environment(self) -> Self:
        refuse_weak_secrets(self.environment, self.secrets())
        return self


@cache
def get_settings() -> Settings:
    return load_settings(Settings)
