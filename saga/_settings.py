"""Secrets in settings: production refuses weak ones at start, development names them in a warning.

Each service's settings class lists the secrets it reads (``secrets()``) and validates them with
``refuse_weak_secrets``; its ``get_settings`` uses ``load_settings``, which turns a refusal (or any
other invalid setting) into one line per variable and exit status 3, not a traceback. 3 is
uvicorn's startup failure: its supervisor then stops instead of restarting its workers for ever.
"""

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from ._tokens import DEV_SIGNING_KEY, MIN_KEY_BYTES

log = logging.getLogger("security")

STARTUP_FAILURE = 3
MIN_PASSWORD_CHARS = 16
# A random secret of the minimum length almost surely has more (16 hex digits: 1 in 2.5 million
# has fewer); a repeated character ("k" * 32) has one.
MIN_DISTINCT_CHARS = 5
# Every secret value written in this repository (compose files, .env.example, tests, docs) and the
# usual stand-ins; tests/unit/test_secrets.py finds the repository's and checks they are here.
PLACEHOLDERS = frozenset(
    {DEV_SIGNING_KEY, "admin", "app", "changeme", "change-me", "changethis", "dev", "password", "postgres", "s3cret-enough", "secret"}
)
# Words no generated secret contains: "changethis-changethis-changethis!" is a placeholder too.
PLACEHOLDER_WORDS = ("changethis", "changeme", "change-me", "change_me", "placeholder", "never-use-in-production", "example")


class SecretKind(Enum):
    # (minimum length, how to make a good one); a minimum of 0 checks only for placeholders.
    SIGNING_KEY = (MIN_KEY_BYTES, "openssl rand -hex 32")
    PASSWORD = (MIN_PASSWORD_CHARS, "openssl rand -hex 16")
    EXTERNAL = (0, "the account's real one")  # e.g. an SMTP account's: not ours to size


@dataclass(frozen=True)
class Secret:
    variable: str  # the environment variable, as a person sets it
    value: str | None  # None: not set, nothing to check
    kind: SecretKind


class InsecureSecrets(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def password_in_url(variable: str, url: str) -> Secret:
    """The password inside a database or Redis URL (None when the URL has none)."""
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None  # not a URL: connecting will say so
    return Secret(f"the password in {variable}", None if password is None else str(password), SecretKind.PASSWORD)


def weakness(value: str, kind: SecretKind) -> str | None:
    """Why ``value`` cannot be a production secret of this kind, or None when it can."""
    minimum, _ = kind.value
    lowered = value.lower()
    if value in PLACEHOLDERS or lowered in PLACEHOLDERS or any(word in lowered for word in PLACEHOLDER_WORDS):
        return "is a placeholder"
    if minimum and len(value.encode()) < minimum:
        return f"is shorter than {minimum} bytes"
    if minimum and len(set(value)) < MIN_DISTINCT_CHARS:
        return f"has fewer than {MIN_DISTINCT_CHARS} different characters"
    return None


def weak_secrets(secrets: Iterable[Secret]) -> list[str]:
    """One line per weak secret: what is wrong and how to make a good one."""
    problems = []
    for secret in secrets:
        if secret.value is None:
            continue
        reason = weakness(secret.value, secret.kind)
        if reason is not None:
            problems.append(f"{secret.variable} {reason}; set it ({secret.kind.value[1]})")
    return problems


def refuse_weak_secrets(environment: str, secrets: Iterable[Secret]) -> None:
    """A settings validator: production refuses every weak secret; development only a short signing key.

    Development keeps its public defaults, but an HS256 key shorter than the hash is never usable.
    """
    secrets = list(secrets)
    if environment != "production":
        secrets = [s for s in secrets if s.kind is SecretKind.SIGNING_KEY and s.value is not None and len(s.value.encode()) < MIN_KEY_BYTES]
    if problems := weak_secrets(secrets):
        raise InsecureSecrets(problems)


class ServiceSettings(Protocol):
    environment: str

    def secrets(self) -> list[Secret]: ...


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def _invalid_settings(exc: ValidationError, env_prefix: str) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        cause = error.get("ctx", {}).get("error")
        message = str(error["msg"]).removeprefix("Value error, ")
        if isinstance(cause, InsecureSecrets):
            lines.extend(cause.problems)
        elif error["loc"]:
            variable = env_prefix + "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"{variable}: {message}")
        else:
            lines.append(message)
    return lines


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """The settings from the environment; invalid or, in production, insecure ones end the process."""
    try:
        settings = settings_class()
    except ValidationError as exc:
        env_prefix = str(settings_class.model_config.get("env_prefix", ""))
        for line in _invalid_settings(exc, env_prefix):
            print(f"refusing to start: {line}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None
    service: ServiceSettings = settings  # type: ignore[assignment]  # every service's settings are one
    for problem in weak_secrets(service.secrets()):
        log.warning("INSECURE DEFAULT: %s (production refuses to start with this)", problem)
    return settings
