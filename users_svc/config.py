from functools import cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import warn_on_insecure_default


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    database_url: str
    broker_url: str
    # How long POST /v1/register/ waits for the saga before answering 202 instead of 201.
    register_wait_seconds: float = 5.0
    # Argon2id parameters (argon2-cffi's defaults: RFC 9106's low-memory profile).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    # The relay publishes the outbox; its watchdog re-drives sagas that stopped moving.
    relay_interval_seconds: float = 0.5
    saga_stale_after_seconds: float = 30.0
    # Touched on every relay pass when set: the container's healthcheck reads its age.
    relay_heartbeat_file: Path | None = None


@cache
def get_settings() -> Settings:
    settings = Settings()  # type: ignore[call-arg]  # read from the environment
    warn_on_insecure_default(settings.database_url)
    return settings
