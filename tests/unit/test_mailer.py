import pytest

from emails_svc import mailer
from emails_svc.schemas import SendRequest


def _message(subject: str = "Hello") -> object:
    text, html = mailer.render_welcome("Ann <b>", "ann@example.com")
    return mailer.compose(
        sender="Registration <no-reply@example.com>",
        to_address="ann@example.com",
        to_name="Ann Lee",
        subject=subject,
        text=text,
        html=html,
        message_id=mailer.new_message_id("Registration <no-reply@example.com>"),
    )


def test_welcome_mail_has_text_and_html_parts_and_proper_headers() -> None:
    message = _message()
    assert message["To"] == "Ann Lee <ann@example.com>"
    assert message["From"] == "Registration <no-reply@example.com>"
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Date"]
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


def test_html_part_escapes_the_users_name() -> None:
    html = _message().get_body(preferencelist=("html",)).get_content()
    assert "Ann &lt;b&gt;" in html
    assert "<b>," not in html


def test_header_injection_in_the_subject_is_refused() -> None:
    with pytest.raises(ValueError, match=r"linefeed|carriage return"):
        _message("Hi\r\nBcc: victim@example.com")
    with pytest.raises(ValueError, match="String should match pattern"):
        SendRequest(user_id=1, subject="Hi\nBcc: victim@example.com", body="x")
