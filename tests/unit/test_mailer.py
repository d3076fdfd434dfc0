from email import policy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from emails_svc import mailer
from emails_svc.schemas import RecipientRecord, SendRequest
from users_svc.schemas import MeUpdate, Name

SENDER = "Registration <no-reply@example.com>"


def _message(subject: str = "Hello", to_address: str = "ann@example.com", to_name: str = "Ann Lee", text: str | None = None) -> object:
    body, html = mailer.render_welcome("Ann <b>", to_address)
    return mailer.compose(
        sender=SENDER,
        to_address=to_address,
        to_name=to_name,
        subject=subject,
        text=body if text is None else text,
        html=html,
        message_id=mailer.new_message_id(SENDER),
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


SUBJECTS_OF_MORE_THAN_ONE_LINE = ["Hi\r\nBcc: victim@example.com", "Hi\nthere", "next\x85line", "line\u2028separator", "para\u2029graph"]


@pytest.mark.parametrize("subject", SUBJECTS_OF_MORE_THAN_ONE_LINE)
def test_a_subject_of_more_than_one_line_is_refused_at_the_api_and_cannot_be_composed(subject: str) -> None:
    with pytest.raises(mailer.UndeliverableMessage, match=r"linefeed|carriage return"):
        _message(subject)
    with pytest.raises(ValidationError, match="must be one line of text"):
        SendRequest(user_id=1, subject=subject, body="x")


@pytest.mark.parametrize("name", ["Ann\nLee", "Ann\rLee", "A\x85nn", "Ann\u2028Lee", "Ann\x00", "Ann\tLee"])
def test_names_of_more_than_one_line_are_refused_at_registration_and_update(name: str) -> None:
    with pytest.raises(ValidationError, match=r"must be one line of text|NUL"):
        TypeAdapter(Name).validate_python(name)
    with pytest.raises(ValidationError):
        MeUpdate(first_name=name)


def test_an_idn_domain_goes_out_as_ascii_and_a_non_ascii_local_part_as_utf8() -> None:
    idn = _message(to_address="ann@bücher.example.com")
    assert idn["To"] == "Ann Lee <ann@xn--bcher-kva.example.com>"
    assert idn.as_bytes().isascii()  # no SMTPUTF8 needed
    utf8 = _message(to_address="jörg@bücher.example.com", to_name="Jörg")
    assert utf8["To"] == "Jörg <jörg@xn--bcher-kva.example.com>"
    assert b"J\xc3\xb6rg <j\xc3\xb6rg@xn--bcher-kva.example.com>" in utf8.as_bytes(policy=policy.SMTPUTF8)


def test_an_address_no_mail_can_be_written_to_cannot_be_composed() -> None:
    with pytest.raises(mailer.UndeliverableMessage, match="not a deliverable address"):
        _message(to_address="no at sign")
    with pytest.raises(mailer.UndeliverableMessage, match="not a deliverable address"):
        _message(to_address='"quoted local"@example.com')


def test_a_stored_name_with_line_breaks_is_written_on_one_line() -> None:
    assert _message(to_name="Ann\nLee\u2028\x85")["To"] == "Ann Lee <ann@example.com>"


def test_recipient_records_from_a_saga_hold_only_addresses_mail_can_be_written_to() -> None:
    record = RecipientRecord(user_id=1, email="Ann@BÜCHER.example.com", first_name="Ann\n", last_name="Lee\u2028Smith")
    assert (record.email, record.first_name, record.last_name) == ("Ann@bücher.example.com", "Ann", "Lee Smith")
    with pytest.raises(ValidationError, match="not a deliverable address"):
        RecipientRecord(user_id=1, email="ann@", first_name="Ann", last_name="Lee")


# Whatever the APIs accept composes into a message that can be written out for SMTP.
_names = st.text(min_size=1, max_size=100).filter(lambda text: _valid(TypeAdapter(Name), text))
_subjects = st.text(min_size=1, max_size=200).filter(lambda text: _valid(SendRequest, {"user_id": 1, "subject": text, "body": "x"}))
_bodies = st.text(min_size=1, max_size=2000).filter(lambda text: _valid(SendRequest, {"user_id": 1, "subject": "s", "body": text}))


def _valid(model: object, value: object) -> bool:
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@given(first=_names, last=_names, subject=_subjects, text=_bodies, non_ascii=st.booleans())
def test_every_name_subject_and_body_the_apis_accept_composes(first: str, last: str, subject: str, text: str, non_ascii: bool) -> None:
    name = f"{TypeAdapter(Name).validate_python(first)} {TypeAdapter(Name).validate_python(last)}"
    message = _message(subject, to_address="jörg@bücher.example.com" if non_ascii else "ann@example.com", to_name=name, text=text)
    message.as_bytes(policy=policy.SMTPUTF8 if non_ascii else policy.default)
