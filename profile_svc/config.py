from functools import cache
from typing import Literal, Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from saga import DEV_SIGNING_KEY, check_signing_key, warn_on_insecure_default


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILE_")

    database_url: str
    broker_url: str
    environment: Literal["development", "production"] = "development"
    # On: every endpoint wants an access token whose subject is the user addressed (401/403).
    # Off by default, as the contract's scripts call these endpoints without tokens.
    require_access_token: bool = False
    # The users service's signing key (USERS_JWT_SIGNING_KEY): tokens are verified here, locally.
    jwt_signing_key: str = DEV_SIGNING_KEY

    @model_validator(mode="after")
    def _signing_key_fits_the_environment(self) -> Self:
        if self.require_access_token:
            check_signing_key(self.jwt_signing_key, self.environment)
        return self


@cache
def get_settings() -> Settings:
    settings = Settings()  # type: ignore[call-arg]  # read from the environment
    warn_on_insecure_default(settings.database_url)
    return settings
