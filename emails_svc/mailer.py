"""Composing and sending mail over SMTP."""

import smtplib
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .config import Settings

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)

WELCOME_SUBJECT = "Welcome aboard"
GOODBYE_SUBJECT = "Your account is being deleted"


def render_welcome(first_name: str, email: str) -> tuple[str, str]:
    """The welcome mail's plain-text and HTML bodies."""
    context = {"first_name": first_name, "email": email}
    return _templates.get_template("welcome.txt").render(context), _templates.get_template("welcome.html").render(context)


def render_goodbye(first_name: str, email: str, restore_until: datetime) -> tuple[str, str]:
    """The goodbye mail: worded to stay true if the deletion fails and is undone after it was sent."""
    context = {"first_name": first_name, "email": email, "restore_until": restore_until.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC")}
    return _templates.get_template("goodbye.txt").render(context), _templates.get_template("goodbye.html").render(context)


def compose(*, sender: str, to_address: str, to_name: str, subject: str, text: str, html: str | None, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr((to_name, to_address))
    message["Subject"] = subject  # EmailMessage refuses CR/LF here, so no header injection
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def new_message_id(sender: str) -> str:
    domain = Address(addr_spec=sender.rsplit("<", 1)[-1].rstrip(">").strip()).domain or "localhost"
    return make_msgid(domain=domain)


class TransientDeliveryError(Exception):
    """The SMTP server could not be reached or asked us to try later (4xx): retry."""


class PermanentDeliveryError(Exception):
    """The SMTP server refused the message (5xx): retrying will not help."""


def send(settings: Settings, message: EmailMessage) -> None:
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise TransientDeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise PermanentDeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentDeliveryError(f"recipients refused: {exc.recipients!r}") from exc
    except OSError as exc:  # refused, reset, timed out, disconnected (SMTPException is an OSError)
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
