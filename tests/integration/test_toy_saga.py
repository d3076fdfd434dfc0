"""Adding a saga is a declaration, its tasks and its effects: a fifth saga, declared only here,
driven end to end by the engine through the outbox, with real workers on the real Redis.

    booking: hold_seat -> confirm_booking (pivot) -> send_ticket
              (toy)       (users)                    (toy)

The toy service's tasks and the pivot are registered by a worker started in the test, which
consumes the users queue (the engine's own tasks: compensation, step events) and the toy queue.
"""

import uuid
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy.orm import Session, sessionmaker

from saga import SAGAS, RegistrationPayload, SagaDeclaration, SagaStepDeclaration, SagaTask, TaskName, make_sessionmaker
from tests.stack import wait_until
from users_svc import engine, outbox
from users_svc import tasks as users_worker
from users_svc.config import get_settings
from users_svc.effects import EFFECTS, Effects
from users_svc.models import SAGA_CLASSES, RegistrationStatus, Saga, SagaStep, UserAccount
from users_svc.tasks import celery_app

TOY_QUEUE = "toy"

# 1. The declaration (it would live in saga/_sagas.py).
BOOKING = SagaDeclaration(
    kind="booking",
    steps=(
        SagaStepDeclaration("hold_seat", "toy.hold_seat", undo="toy.release_seat", owner=TOY_QUEUE),
        SagaStepDeclaration("confirm_booking", "users.confirm_booking"),
        SagaStepDeclaration("send_ticket", "toy.send_ticket", owner=TOY_QUEUE),
    ),
    pivot="confirm_booking",
)


class BookingSaga(Saga):  # the saga log's row for the new kind (users_svc/models.py)
    __mapper_args__ = {"polymorphic_identity": "booking"}  # noqa: RUF012  # SQLAlchemy's declarative attribute


# 2. Its tasks, in the services that own them: idempotent, keyed on the saga id.
SEATS: set[str] = set()
TICKETS: list[str] = []


@celery_app.task(name="toy.hold_seat", base=SagaTask, step="hold_seat")
def hold_seat(saga_id: str, payload: dict[str, object]) -> None:
    SEATS.add(saga_id)


@celery_app.task(name="toy.release_seat", base=SagaTask)
def release_seat(saga_id: str, payload: dict[str, object]) -> None:
    SEATS.discard(saga_id)


@celery_app.task(name="users.confirm_booking", base=SagaTask, step="confirm_booking")
def confirm_booking(saga_id: str) -> None:
    with users_worker.sessions().begin() as session:
        engine.pass_pivot(session, uuid.UUID(saga_id), "booking")  # a failpoint here fails it for fail-confirm_booking-* users


@celery_app.task(name="toy.send_ticket", base=SagaTask, step="send_ticket")
def send_ticket(saga_id: str, payload: dict[str, object]) -> None:
    if saga_id not in TICKETS:
        TICKETS.append(saga_id)


# 3. Its effects on the account (users_svc/effects.py).
def _payload(user: UserAccount) -> dict[str, object]:
    return RegistrationPayload(user_id=user.id, email=user.email, first_name=user.first_name, last_name=user.last_name).model_dump()


def _booked(user: UserAccount) -> None:
    user.registration_status = RegistrationStatus.COMPLETED


def _not_booked(user: UserAccount) -> None:
    user.registration_status = RegistrationStatus.FAILED


@pytest.fixture
def booking_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SAGAS, "booking", BOOKING)
    monkeypatch.setitem(EFFECTS, "booking", Effects(_payload, on_pivot=_booked, on_failure=_not_booked))
    monkeypatch.setitem(SAGA_CLASSES, "booking", BookingSaga)


@pytest.fixture
def sessions(clean: object, booking_declared: None) -> Iterator[sessionmaker[Session]]:
    make_session = make_sessionmaker(get_settings().database_url)
    with start_worker(celery_app, queues=["users", TOY_QUEUE], perform_ping_check=False):
        yield make_session
    make_session.kw["bind"].dispose()


def _book(sessions: sessionmaker[Session], email: str) -> uuid.UUID:
    with sessions.begin() as session:
        user = UserAccount(email=email, first_name="A", last_name="B", active=True, password_hash="$argon2id$x")
        session.add(user)
        session.flush()
        saga_id = engine.start_saga(session, user, "booking").id
    assert outbox.publish_outbox(sessions, celery_app, saga_id=saga_id) == 1
    return saga_id


def _finished(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> tuple[str, str, dict[str, str]] | None:
    with sessions() as session:
        saga = session.get_one(Saga, saga_id)
        if saga.finished_at is None:
            return None
        user = session.get_one(UserAccount, saga.user_id)
        steps = {s.step: s.status for s in session.query(SagaStep).filter_by(saga_id=saga_id)}
        return saga.status, user.registration_status, steps


def test_the_toy_saga_runs_to_its_end(sessions: sessionmaker[Session]) -> None:
    saga_id = _book(sessions, "booker@example.com")
    outcome = wait_until(lambda: _finished(sessions, saga_id), what="the booking saga to finish")
    assert outcome == ("completed", "completed", {"hold_seat": "done", "confirm_booking": "done", "send_ticket": "done"})
    assert str(saga_id) in SEATS
    assert TICKETS.count(str(saga_id)) == 1


def test_the_toy_saga_compensates_when_its_pivot_fails(sessions: sessionmaker[Session]) -> None:
    saga_id = _book(sessions, "fail-confirm_booking@example.com")
    outcome = wait_until(lambda: _finished(sessions, saga_id), what="the booking saga to finish")
    assert outcome == ("failed", "failed", {"hold_seat": "compensated", "confirm_booking": "failed", "send_ticket": "skipped"})
    assert str(saga_id) not in SEATS
    assert str(saga_id) not in TICKETS


def test_the_toy_saga_s_compensation_chain_ends_like_every_other(booking_declared: None) -> None:
    chain = BOOKING.compensation_chain(celery_app, "s", {}, "confirm_booking")
    assert [(task["task"], task.options["queue"]) for task in chain.tasks] == [
        (TaskName.BEGIN_COMPENSATION, "users"),
        ("toy.release_seat", TOY_QUEUE),
        (TaskName.FAIL_SAGA, "users"),
    ]
