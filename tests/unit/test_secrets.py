"""Secrets in settings: production refuses weak ones at start, in one line naming the variable."""

import importlib
import logging
import re
import secrets
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from saga import DEV_SIGNING_KEY, STARTUP_FAILURE, SecretKind, load_settings, weak_secrets
from saga._settings import weakness

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"users_svc": "USERS", "profile_svc": "PROFILE", "emails_svc": "EMAILS"}
GOOD_KEY = secrets.token_hex(32)
GOOD_PASSWORD = secrets.token_hex(16)


def _settings_class(module: str) -> type:
    return importlib.import_module(f"{module}.config").Settings


def _production(module: str, **overrides: object) -> dict[str, object]:
    """Settings a production deployment could start with; each test spoils one of them."""
    name = module.removesuffix("_svc")
    return {
        "database_url": f"postgresql+psycopg2://{name}:{GOOD_PASSWORD}@postgres:5432/{name}",
        "broker_url": f"redis://:{GOOD_PASSWORD}@redis:6379/0",
        "environment": "production",
        "jwt_signing_key": GOOD_KEY,
        "require_access_token": True,
        **overrides,
    }


# --- what a weak secret is ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (DEV_SIGNING_KEY, "placeholder"),
        ("changethis", "placeholder"),
        ("ChangeThis", "placeholder"),
        ("changethis-changethis-changethis-changethis", "placeholder"),
        ("dev", "placeholder"),
        ("short-but-random-9f", "shorter than 32 bytes"),
        ("k" * 64, "fewer than 5 different characters"),
        ("abab" * 16, "fewer than 5 different characters"),
    ],
)
def test_weak_signing_keys(value: str, reason: str) -> None:
    assert reason in (weakness(value, SecretKind.SIGNING_KEY) or "")


def test_generated_secrets_pass() -> None:
    for _ in range(20):
        assert weakness(secrets.token_hex(32), SecretKind.SIGNING_KEY) is None
        assert weakness(secrets.token_urlsafe(48), SecretKind.SIGNING_KEY) is None
        assert weakness(secrets.token_hex(8), SecretKind.PASSWORD) is None  # 16 characters
    assert weakness("smtp", SecretKind.EXTERNAL) is None  # a provider's password is the provider's business
    assert weakness("changethis", SecretKind.EXTERNAL) == "is a placeholder"


def _secrets_written_in_the_repository() -> set[str]:
    """Passwords in URLs, compose defaults, .env assignments, Python constants and "x" * n keys."""
    patterns = [
        r"[a-z0-9+]+://[^\s:/@'\"]*:([^\s@/'\"]+)@",
        r"\$\{\w*(?:PASSWORD|KEY|SECRET)\w*:-([^}]*)\}",
        r"^[ \t]*#?[ \t]*\w*(?:PASSWORD|SIGNING_KEY|SECRET)\w*[ \t]*[=:][ \t]*\"?([^\"\s#]+)",
        r"\b\w*(?:PASSWORD|KEY|SECRET)\w*\s*=\s*\"([^\"]+)\"",
    ]
    found: set[str] = set()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if name.endswith((".lock", ".png", ".json")):
            continue
        text = (ROOT / name).read_text(errors="replace")
        for pattern in patterns:
            found.update(re.findall(pattern, text, re.MULTILINE))
        found.update(char * int(times) for char, times in re.findall(r"\"(.)\"\s*\*\s*(\d+)", text))
    # Interpolations (${VAR}, $(openssl ...)), format fields and calls (secrets.token_hex(16)) are not values.
    return {value for value in found if value and not value.startswith("$") and not set("{(") & set(value)}


def test_every_secret_written_in_the_repository_is_refused_in_production() -> None:
    written = _secrets_written_in_the_repository()
    assert {DEV_SIGNING_KEY, "changethis", "dev", "k" * 32} <= written  # the scan sees them
    for value in written:
        assert weakness(value, SecretKind.SIGNING_KEY), value
        assert weakness(value, SecretKind.PASSWORD), value


# --- each service's settings ----------------------------------------------------------------


@pytest.mark.parametrize("module", SERVICES)
def test_production_starts_with_real_secrets(module: str) -> None:
    settings = _settings_class(module)(**_production(module))
    assert weak_secrets(settings.secrets()) == []


def _spoilt(module: str) -> list[tuple[str, dict[str, object]]]:
    prefix = SERVICES[module]
    name = module.removesuffix("_svc")
    cases = [
        (f"{prefix}_JWT_SIGNING_KEY is a placeholder", {"jwt_signing_key": DEV_SIGNING_KEY}),
        (f"{prefix}_JWT_SIGNING_KEY has fewer than 5", {"jwt_signing_key": "k" * 32}),
        (
            f"the password in {prefix}_DATABASE_URL is a placeholder",
            {"database_url": f"postgresql+psycopg2://app:changethis@postgres/{name}"},
        ),
        (f"the password in {prefix}_DATABASE_URL is a placeholder", {"database_url": f"postgresql+psycopg2://app:dev@postgres/{name}"}),
        (f"the password in {prefix}_DATABASE_URL is shorter", {"database_url": f"postgresql+psycopg2://app:9f3a1c@postgres/{name}"}),
        (f"the password in {prefix}_BROKER_URL is a placeholder", {"broker_url": "redis://:changethis@redis:6379/0"}),
        (f"the password in {prefix}_BROKER_URL is shorter", {"broker_url": "redis://default:9f3a1c@redis:6379/0"}),
    ]
    if module == "emails_svc":
        cases.append(("EMAILS_SMTP_PASSWORD is a placeholder", {"smtp_password": "changethis"}))
    return [(module, message, overrides) for message, overrides in cases]


@pytest.mark.parametrize(("module", "message", "overrides"), [case for module in SERVICES for case in _spoilt(module)])
def test_production_refuses_a_weak_secret_naming_its_variable(module: str, message: str, overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        _settings_class(module)(**_production(module, **overrides))


@pytest.mark.parametrize("module", ["profile_svc", "emails_svc"])
def test_a_service_that_verifies_no_token_does_not_need_a_key(module: str) -> None:
    _settings_class(module)(**_production(module, require_access_token=False, jwt_signing_key=DEV_SIGNING_KEY))


@pytest.mark.parametrize("module", SERVICES)
def test_development_keeps_its_defaults(module: str) -> None:
    development = {"database_url": "postgresql+psycopg2://app:dev@postgres/x", "broker_url": "redis://redis:6379/0"}
    _settings_class(module)(**development, require_access_token=True)  # the public development key
    with pytest.raises(ValidationError, match=re.escape(f"{SERVICES[module]}_JWT_SIGNING_KEY is shorter than 32 bytes")):
        _settings_class(module)(**development, require_access_token=True, jwt_signing_key="short")


# --- at start: one line, exit status 3 --------------------------------------------------------


def _environment(monkeypatch: pytest.MonkeyPatch, module: str, **values: str) -> None:
    prefix = SERVICES[module]
    for field, value in {**{k: str(v) for k, v in _production(module).items()}, **values}.items():
        monkeypatch.setenv(f"{prefix}_{field.upper()}", value)


@pytest.mark.parametrize("module", SERVICES)
def test_a_placeholder_ends_the_process_with_one_line(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _environment(monkeypatch, module, jwt_signing_key=DEV_SIGNING_KEY)
    with pytest.raises(SystemExit) as exit_:
        load_settings(_settings_class(module))
    assert exit_.value.code == STARTUP_FAILURE
    assert capsys.readouterr().err.splitlines() == [
        f"refusing to start: {SERVICES[module]}_JWT_SIGNING_KEY is a placeholder; set it (openssl rand -hex 32)"
    ]


def test_each_weak_secret_gets_its_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _environment(monkeypatch, "users_svc", jwt_signing_key="changethis", database_url="postgresql+psycopg2://app:changethis@postgres/users")
    with pytest.raises(SystemExit):
        load_settings(_settings_class("users_svc"))
    assert capsys.readouterr().err.splitlines() == [
        "refusing to start: USERS_JWT_SIGNING_KEY is a placeholder; set it (openssl rand -hex 32)",
        "refusing to start: the password in USERS_DATABASE_URL is a placeholder; set it (openssl rand -hex 16)",
    ]


def test_a_missing_setting_is_one_line_too(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PROFILE_DATABASE_URL")
    with pytest.raises(SystemExit):
        load_settings(_settings_class("profile_svc"))
    assert capsys.readouterr().err.splitlines() == ["refusing to start: PROFILE_DATABASE_URL: Field required"]


def test_an_invalid_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EMAILS_SEND_RATE_PER_ADDRESS", "often")
    with pytest.raises(SystemExit):
        load_settings(_settings_class("emails_svc"))
    assert capsys.readouterr().err.startswith("refusing to start: EMAILS_SEND_RATE_PER_ADDRESS: not a rate in the limits notation")


def test_development_warns_about_each_placeholder(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _environment(monkeypatch, "users_svc", environment="development", database_url="postgresql+psycopg2://app:changethis@postgres/users")
    with caplog.at_level(logging.WARNING, logger="security"):
        load_settings(_settings_class("users_svc"))
    assert caplog.messages == [
        "INSECURE DEFAULT: the password in USERS_DATABASE_URL is a placeholder; set it (openssl rand -hex 16)"
        " (production refuses to start with this)"
    ]
