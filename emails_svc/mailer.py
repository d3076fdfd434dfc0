"""Composing and sending mail over SMTP."""

import contextlib
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .config import Settings

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)

WELCOME_SUBJECT = "Welcome aboard"
GOODBYE_SUBJECT = "Your account is being deleted"
# Control characters and the line and paragraph separators: what saga.SingleLine refuses.
_NOT_IN_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


# Bodies as quoted-printable or base64: smtplib does not ask for 8BITMIME for them.
_SEVEN_BIT_BODIES = policy.default.clone(cte_type="7bit")


def one_line(text: str) -> str:
    """Text for a header: each run of line breaks and control characters becomes one space."""
    return _NOT_IN_ONE_LINE.sub(" ", text).strip()


def render_welcome(first_name: str, email: str) -> tuple[str, str]:
    """The welcome mail's plain-text and HTML bodies."""
    context = {"first_name": first_name, "email": email}
    return _templates.get_template("welcome.txt").render(context), _templates.get_template("welcome.html").render(context)


def render_goodbye(first_name: str, email: str, restore_until: datetime) -> tuple[str, str]:
    """The goodbye mail: worded to stay true if the deletion fails and is undone after it was sent."""
    context = {"first_name": first_name, "email": email, "restore_until": restore_until.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC")}
    return _templates.get_template("goodbye.txt").render(context), _templates.get_template("goodbye.html").render(context)


class TransientDeliveryError(Exception):
    """The SMTP server could not be reached or asked us to try later (4xx): retry."""


class PermanentDeliveryError(Exception):
    """Retrying will not help: the server refused the message (5xx), or it cannot be written or sent."""


class UndeliverableMessage(PermanentDeliveryError):
    """The message cannot be composed into valid mail (an address, a header)."""


def compose(*, sender: str, to_address: str, to_name: str, subject: str, text: str, html: str | None, message_id: str) -> EmailMessage:
    """A message ready for ``send``; raises UndeliverableMessage, with why, if none can be made."""
    try:
        local_part, domain = _deliverable(to_address)
        message = EmailMessage(policy=_SEVEN_BIT_BODIES)
        message["From"] = sender
        # Names are one line since the users service refuses line breaks; older records may hold some.
        message["To"] = Address(display_name=one_line(to_name), username=local_part, domain=domain)
        message["Subject"] = subject  # EmailMessage refuses line breaks here, so no header injection
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        # Written out once here, the way smtplib will, so that what cannot be written fails now.
        message.as_bytes(policy=_SEVEN_BIT_BODIES.clone(utf8=not local_part.isascii()))
    except (ValueError, TypeError) as exc:  # UnicodeError and email.errors' header defects are ValueErrors
        raise UndeliverableMessage(f"cannot compose the message: {exc}") from exc
    return message


def _deliverable(address: str) -> tuple[str, str]:
    """The address as it goes over SMTP: an IDNA (ASCII) domain, and the local part as it is.

    A non-ASCII local part needs a server that offers SMTPUTF8; smtplib asks for it.
    """
    try:
        valid = validate_email(address, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a deliverable address {address!r}: {exc}") from None
    return valid.local_part, valid.ascii_domain


def new_message_id(sender: str) -> str:
    domain = Address(addr_spec=sender.rsplit("<", 1)[-1].rstrip(">").strip()).domain or "localhost"
    return make_msgid(domain=domain)


def send(settings: Settings, message: EmailMessage) -> None:
    """Hand the message to the SMTP server; the exception raised says whether to try again."""
    smtp = _session(settings)
    try:
        smtp.send_message(message)  # with SMTPUTF8 when an address needs it
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentDeliveryError(f"the SMTP server cannot take this message: {exc}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        refusals = ", ".join(f"{code} {reply.decode(errors='replace')}" for code, reply in exc.recipients.values())
        if all(code >= 500 for code, _ in exc.recipients.values()):
            raise PermanentDeliveryError(f"SMTP refused the recipient: {refusals}") from exc
        raise TransientDeliveryError(f"SMTP deferred the recipient: {refusals}") from exc
    except smtplib.SMTPResponseException as exc:  # the sender or the data refused
        raise _by_code(exc) from exc
    except OSError as exc:  # disconnected, reset, timed out (SMTPException is an OSError)
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
    except (ValueError, TypeError) as exc:  # compose() writes it out first, so not expected
        raise UndeliverableMessage(f"cannot write the message: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):  # the message is delivered or not by now; QUIT changes nothing
            smtp.quit()
        smtp.close()


def _session(settings: Settings) -> smtplib.SMTP:
    """A connected, greeted (and logged-in) SMTP session.

    Failing here says nothing about the message: the server is down or away, or our settings
    (TLS, credentials) are wrong. Each is worth trying again once fixed, so all are transient.
    """
    smtp = smtplib.SMTP(timeout=settings.smtp_timeout_seconds)
    try:
        smtp.connect(settings.smtp_host, settings.smtp_port)
        smtp.ehlo_or_helo_if_needed()
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
    except OSError as exc:  # refused, timed out, TLS, SMTPConnectError, SMTPAuthenticationError, ...
        smtp.close()
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
    return smtp


def _by_code(exc: smtplib.SMTPResponseException) -> Exception:
    reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    if 400 <= exc.smtp_code < 500:
        return TransientDeliveryError(f"SMTP {exc.smtp_code}: {reply}")
    return PermanentDeliveryError(f"SMTP {exc.smtp_code}: {reply}")
