import logging

import pytest

from saga import INSECURE_DEFAULT_PASSWORD, warn_on_insecure_default


def test_the_placeholder_database_password_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="security"):
        warn_on_insecure_default(f"postgresql+psycopg2://app:{INSECURE_DEFAULT_PASSWORD}@postgres:5432/users")
    assert "INSECURE DEFAULT" in caplog.text


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg2://app:s3cret-enough@postgres:5432/users", "postgresql+psycopg2://app@127.0.0.1:55432/users", "not a url"],
)
def test_other_passwords_pass_quietly(caplog: pytest.LogCaptureFixture, url: str) -> None:
    with caplog.at_level(logging.WARNING, logger="security"):
        warn_on_insecure_default(url)
    assert caplog.text == ""
