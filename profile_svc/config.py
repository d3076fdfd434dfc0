from functools import cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILE_")

    database_url: str
    broker_url: str


@cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # read from the environment
