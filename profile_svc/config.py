from functools import cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import warn_on_insecure_default


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILE_")

    database_url: str
    broker_url: str


@cache
def get_settings() -> Settings:
    settings = Settings()  # type: ignore[call-arg]  # read from the environment
    warn_on_insecure_default(settings.database_url)
    return settings
