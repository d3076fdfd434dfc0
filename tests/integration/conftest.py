"""Integration: each service's app in process, against the real PostgreSQL and Redis (no workers)."""

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler
from aiosmtpd.smtp import Envelope
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
    """What the SMTP server received; recipients in ``refusals`` get that reply to RCPT TO instead."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) of each message
        self.parsed: list[EmailMessage] = []  # each message as a modern mail client reads it
        self.refusals: dict[str, str] = {}

    async def handle_RCPT(self, server: object, session: object, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.parsed.append(message_from_bytes(envelope.content, _class=EmailMessage, policy=policy.default))
        return await super().handle_DATA(server, session, envelope)

    def handle_message(self, message: object) -> None:
        self.messages.append(message)


def _smtp_server(port: int, **smtp_options: object) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def smtp(clean: Stack) -> Iterator[Inbox]:
    """A real SMTP server on the port the emails service is configured for, offering SMTPUTF8."""
    yield from _smtp_server(clean.config.smtp_port, enable_SMTPUTF8=True)


@pytest.fixture
def smtp_without_smtputf8(clean: Stack) -> Iterator[Inbox]:
    """The same server without SMTPUTF8, as MailHog 1.0.1."""
    yield from _smtp_server(clean.config.smtp_port, enable_SMTPUTF8=False)
