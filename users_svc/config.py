import os
from functools import cache
from pathlib import Path
from typing import Literal, Self

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import DEV_SIGNING_KEY, Secret, SecretKind, load_settings, password_in_url, refuse_weak_secrets


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    database_url: str
    broker_url: str
    # "production" refuses to start with a placeholder, short or repetitive secret (saga/_settings.py).
    environment: Literal["development", "production"] = "development"
    # How long POST /v1/register/, DELETE /v1/users/me and POST /v1/users/restore wait for their
    # saga before answering 202 instead of 201/200.
    register_wait_seconds: float = 5.0
    # Argon2id: 64 MiB and 3 passes as RFC 9106's second recommendation, but one lane: on a
    # server concurrency comes from requests, so each core hashes one password at a time
    # (four lanes per hash oversubscribe the cores and cut throughput, see docs/benchmarks.md).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 1
    # Hashes computed at once by one API process; by default derived from the memory and cores the
    # container really has, shared among its API workers (see users_svc/hashing.py).
    hash_concurrency: int | None = Field(default=None, ge=1)
    # The API processes in the container (uvicorn --workers), among which memory and cores are shared;
    # uvicorn's own WEB_CONCURRENCY by default.
    api_workers: int = Field(default_factory=lambda: int(os.environ.get("WEB_CONCURRENCY") or 1), ge=1)
    # Memory an API process needs besides its hashes (Python, the app, its connections).
    process_memory_mib: int = Field(default=160, ge=0)
    # How long a request waits for a hash slot before a 503 with Retry-After.
    hash_wait_seconds: float = Field(default=10.0, ge=0)
    # The relay publishes the outbox; its watchdog re-drives sagas that stopped moving.
    relay_interval_seconds: float = 0.5
    saga_stale_after_seconds: float = 30.0
    # A compensation the watchdog re-drove this many times without finishing needs an operator.
    saga_attention_after_redrives: int = Field(default=3, ge=1)
    # The relay prunes published outbox rows this long after publishing: once published a row
    # guards nothing (task ids and the ledgers make a message idempotent), it only tells when.
    outbox_retention_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    # Tokens: HS256 with a key every service shares (PROFILE_/EMAILS_JWT_SIGNING_KEY: the same value).
    jwt_signing_key: str = DEV_SIGNING_KEY
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    # Refreshing one token again within this many seconds (two tabs, a client retrying after a
    # timeout) answers the same new pair; after it, a reuse revokes the session (theft).
    refresh_reuse_leeway_seconds: int = Field(default=15, ge=0, le=300)
    # Requests per client address in moving windows (the `limits` package's syntax; several
    # separated by ";"), then 429 with Retry-After. A registration costs a hash: one address
    # gets no more at once than the hash slots clear well within USERS_HASH_WAIT_SECONDS.
    register_rate_limit: str = "10/minute;200/hour"
    login_rate_limit: str = "60/minute"
    restore_rate_limit: str = "20/minute"
    # Failed logins allowed per account and per client address in a fixed window, then 429
    # (counted before the password is checked; a right password gives its attempt back).
    login_failure_window_seconds: int = 15 * 60
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    # A deleted account can be restored for this long; then its data is purged and its email freed.
    restore_grace_seconds: int = 30 * 24 * 3600

    @field_validator("register_rate_limit", "login_rate_limit", "restore_rate_limit")
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        parse_many(value)  # raises ValueError, with the reason, on a malformed limit
        return value

    # On: GET /v1/users/{id} wants an access token whose subject is that user (401/403), as the
    # profile and emails services' endpoints do with their own switch. Off by default, as the
    # contract's scripts read users without tokens.
    require_access_token: bool = False
    # Touched on every relay pass when set: the container's healthcheck reads its age.
    relay_heartbeat_file: Path | None = None

    # Prometheus metrics of the worker (`celery worker` only), served from its main process on this
    # port when set, with PROMETHEUS_MULTIPROC_DIR naming the worker's own directory (saga/_metrics.py).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_address: str = "127.0.0.1"  # where worker and relay metrics listen (0.0.0.0 in a container)
    # The relay's metrics (outbox, unfinished sagas, queue depths, watchdog re-drives) on this port when set.
    relay_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    def secrets(self) -> list[Secret]:
        return [
            Secret("USERS_JWT_SIGNING_KEY", self.jwt_signing_key, SecretKind.SIGNING_KEY),
            password_in_url("USERS_DATABASE_URL", self.database_url),
            password_in_url("USERS_BROKER_URL", self.broker_url),
        ]

    @model_validator(mode="after")
    def _secrets_fit_the_environment(self) -> Self:
        refuse_weak_secrets(self.environment, self.secrets())
        return self


@cache
def get_settings() -> Settings:
    return load_settings(Settings)
