"""Integration: each service's app in process, against the real PostgreSQL and Redis (no workers)."""

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler
from fastapi.testclient import TestClient

from tests.stack import Stack


@pytest.fixture(autouse=True)
def clean(infra: Stack) -> Stack:
    infra.reset_data()
    return infra


def _client(module: str, **overrides: object) -> Iterator[TestClient]:
    import importlib

    service = importlib.import_module(f"{module}.main")
    config = importlib.import_module(f"{module}.config")
    settings = config.get_settings().model_copy(update=overrides)
    with TestClient(service.create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def users() -> Iterator[TestClient]:
    # No workers run here, so the saga never finishes: don't wait for it.
    yield from _client("users_svc", register_wait_seconds=0.05, argon2_time_cost=1, argon2_memory_cost_kib=8192)


@pytest.fixture
def profile() -> Iterator[TestClient]:
    yield from _client("profile_svc")


@pytest.fixture
def emails() -> Iterator[TestClient]:
    yield from _client("emails_svc")


class Inbox(MessageHandler):
    """What the SMTP server received."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def handle_message(self, message: object) -> None:
        self.messages.append(message)


@pytest.fixture
def smtp(clean: Stack) -> Iterator[Inbox]:
    """A real SMTP server on the port the emails service is configured for."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=clean.config.smtp_port)
    controller.start()
    yield inbox
    controller.stop()
