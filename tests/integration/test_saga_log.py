"""The saga log's rules, against the users database: the pivot and compensation exclude each other."""

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from saga import RegistrationStep, SagaKind, make_sessionmaker
from users_svc import engine, outbox, watchdog
from users_svc.config import get_settings
from users_svc.models import OutboxMessage, RegistrationSaga, SagaStep, UserAccount
from users_svc.tasks import celery_app


@pytest.fixture
def sessions(clean: object) -> Iterator[sessionmaker[Session]]:
    make_session = make_sessionmaker(get_settings().database_url)
    yield make_session
    make_session.kw["bind"].dispose()


@pytest.fixture
def saga_id(sessions: sessionmaker[Session]) -> uuid.UUID:
    with sessions.begin() as session:
        user = UserAccount(email="a@example.com", first_name="A", last_name="B", active=True, password_hash="$argon2id$x")
        session.add(user)
        session.flush()
        return engine.start_saga(session, user, SagaKind.REGISTRATION).id


def _state(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> tuple[str, str, dict[str, str]]:
    with sessions() as session:
        saga = session.get_one(RegistrationSaga, saga_id)
        user = session.get_one(UserAccount, saga.user_id)
        steps = {s.step: s.status for s in session.query(SagaStep).filter_by(saga_id=saga_id)}
        return saga.status, user.registration_status, steps


def test_the_pivot_completes_the_registration(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> None:
    with sessions.begin() as session:
        engine.pass_pivot(session, saga_id, SagaKind.REGISTRATION)
    with sessions.begin() as session:
        engine.pass_pivot(session, saga_id, SagaKind.REGISTRATION)  # delivered twice
    status, user_status, steps = _state(sessions, saga_id)
    assert (status, user_status) == ("completed", "completed")
    assert steps == {"create_profile": "done", "record_address": "done", "complete_registration": "done", "send_welcome_email": "pending"}


def test_compensation_is_refused_once_the_pivot_passed(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> None:
    with sessions.begin() as session:
        engine.pass_pivot(session, saga_id, SagaKind.REGISTRATION)
    with pytest.raises(engine.SagaPastPivot), sessions.begin() as session:
        engine.begin_compensation(session, saga_id, RegistrationStep.RECORD_ADDRESS)
    with pytest.raises(engine.SagaPastPivot), sessions.begin() as session:
        engine.fail_saga(session, saga_id)
    assert _state(sessions, saga_id)[:2] == ("completed", "completed")


def test_the_pivot_is_refused_once_compensation_began(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> None:
    with sessions.begin() as session:
        engine.begin_compensation(session, saga_id, RegistrationStep.RECORD_ADDRESS)
    with pytest.raises(engine.SagaNotRunning), sessions.begin() as session:
        engine.pass_pivot(session, saga_id, SagaKind.REGISTRATION)
    for _ in range(2):  # the last compensation, delivered twice
        with sessions.begin() as session:
            engine.fail_saga(session, saga_id)
    status, user_status, steps = _state(sessions, saga_id)
    assert (status, user_status) == ("failed", "failed")
    assert steps == {
        "create_profile": "compensated",
        "record_address": "failed",
        "complete_registration": "skipped",
        "send_welcome_email": "skipped",
    }


def test_step_events_never_move_a_step_backwards(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> None:
    with sessions.begin() as session:
        engine.record_step_event(session, saga_id, RegistrationStep.CREATE_PROFILE, "failed", "boom", 3)
    with sessions.begin() as session:
        engine.record_step_event(session, saga_id, RegistrationStep.CREATE_PROFILE, "retrying", "late retry event", 2)
    with sessions() as session:
        step = session.get_one(SagaStep, (saga_id, RegistrationStep.CREATE_PROFILE))
        assert (step.status, step.attempts, step.error) == ("failed", 3, "late retry event")


def test_the_watchdog_redrives_stalled_sagas_with_backoff(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> None:
    assert watchdog.redrive_stale(sessions, stale_after_seconds=0) == 0  # its start message is still unpublished
    assert outbox.publish_outbox(sessions, celery_app) == 1
    assert watchdog.redrive_stale(sessions, stale_after_seconds=3600) == 0  # not stale yet
    assert watchdog.redrive_stale(sessions, stale_after_seconds=0) == 1
    with sessions() as session:
        saga = session.get_one(RegistrationSaga, saga_id)
        kinds = [m.kind for m in session.query(OutboxMessage).filter_by(saga_id=saga_id).order_by(OutboxMessage.id)]
    assert saga.redrive_count == 1
    assert kinds == ["start", "start"]


def test_finished_sagas_are_left_alone(sessions: sessionmaker[Session], saga_id: uuid.UUID) -> None:
    outbox.publish_outbox(sessions, celery_app)
    with sessions.begin() as session:
        engine.begin_compensation(session, saga_id, RegistrationStep.CREATE_PROFILE)
        engine.fail_saga(session, saga_id)
    assert watchdog.redrive_stale(sessions, stale_after_seconds=0) == 0
