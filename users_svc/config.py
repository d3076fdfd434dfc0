import os
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    database_url: str
    broker_url: str
    # How long POST /v1/register/ waits for the saga before answering 202 instead of 201.
    register_wait_seconds: float = 5.0
    # Argon2id: 64 MiB and 3 passes as RFC 9106's second recommendation, but one lane: on a
    # server concurrency comes from requests, so each core hashes one password at a time
    # (four lanes per hash oversubscribe the cores and cut throughput, see BENCHMARKS.md).
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 1
    # Hashes computed at once; more only queue for the same cores.
    hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # The relay publishes the outbox; its watchdog re-drives sagas that stopped moving.
    relay_interval_seconds: float = 0.5
    saga_stale_after_seconds: float = 30.0


@cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # read from the environment
