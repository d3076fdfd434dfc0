from functools import cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import warn_on_insecure_default


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


@cache
def get_settings() -> Settings:
    settings = Settings()  # type: ignore[call-arg]  # read from the environment
    warn_on_insecure_default(settings.database_url)
    return settings
