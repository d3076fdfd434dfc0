"""Integration: each service's app in process, against the real PostgreSQL and Redis (no workers)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.stack import Stack
from tests.utils.clients import emails_client, profile_client, users_client
from tests.utils.inbox import Inbox, smtp_server


@pytest.fixture(autouse=True)
def clean(infra: Stack) -> Stack:
    infra.reset_data()
    return infra


@pytest.fixture
def users() -> Iterator[TestClient]:
    with users_client() as client:
        yield client


@pytest.fixture
def profile() -> Iterator[TestClient]:
    with profile_client() as client:
        yield client


@pytest.fixture
def emails() -> Iterator[TestClient]:
    with emails_client() as client:
        yield client


@pytest.fixture
def smtp(clean: Stack) -> Iterator[Inbox]:
    """A real SMTP server on the port the emails service is configured for, offering SMTPUTF8."""
    with smtp_server(clean.config.smtp_port, enable_SMTPUTF8=True) as inbox:
        yield inbox


@pytest.fixture
def smtp_without_smtputf8(clean: Stack) -> Iterator[Inbox]:
    """The same server without SMTPUTF8, as MailHog 1.0.1."""
    with smtp_server(clean.config.smtp_port, enable_SMTPUTF8=False) as inbox:
        yield inbox
