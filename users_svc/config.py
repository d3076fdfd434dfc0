import os
from functools import cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import DEV_SIGNING_KEY, check_signing_key, warn_on_insecure_default


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    database_url: str
    broker_url: str
    # "production" refuses placeholder secrets.
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
    # Hashes computed at once; more only queue for the same cores.
    hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # The relay publishes the outbox; its watchdog re-drives sagas that stopped moving.
    relay_interval_seconds: float = 0.5
    saga_stale_after_seconds: float = 30.0
    # Tokens: HS256 with a key every service shares (PROFILE_/EMAILS_JWT_SIGNING_KEY: the same value).
    jwt_signing_key: str = DEV_SIGNING_KEY
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    # Failed logins allowed per account and per client address in a fixed window, then 429.
    login_failure_window_seconds: int = 15 * 60
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    # A deleted account can be restored for this long; then its data is purged and its email freed.
    restore_grace_seconds: int = 30 * 24 * 3600

    @model_validator(mode="after")
    def _signing_key_fits_the_environment(self) -> Self:
        check_signing_key(self.jwt_signing_key, self.environment)
        return self

    # Touched on every relay pass when set: the container's healthcheck reads its age.
    relay_heartbeat_file: Path | None = None


@cache
def get_settings() -> Settings:
    settings = Settings()  # type: ignore[call-arg]  # read from the environment
    warn_on_insecure_default(settings.database_url)
    return settings
