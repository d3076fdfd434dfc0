"""A real SMTP server (aiosmtpd) that keeps what it receives."""

from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler
from aiosmtpd.smtp import Envelope


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


@contextmanager
def smtp_server(port: int, **smtp_options: object) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
