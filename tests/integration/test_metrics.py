"""The saga counters count transitions that committed: a rolled-back one counts nothing."""

import uuid

import pytest
from sqlalchemy import text

from saga import SAGAS_STARTED, count_after_commit, make_sessionmaker
from tests.stack import Stack


def _started(kind: str) -> float:
    return SAGAS_STARTED.labels(kind)._value.get()


def test_a_transition_counts_once_its_transaction_commits_and_never_when_it_rolls_back(infra: Stack) -> None:
    make_session = make_sessionmaker(infra.config.database_url("users"))
    kind = f"test-{uuid.uuid4().hex[:8]}"

    def fails_after_counting() -> None:
        with make_session.begin() as session:
            session.execute(text("SELECT 1"))
            count_after_commit(session, SAGAS_STARTED, kind)
            raise RuntimeError("the transition fails after it was counted")

    with pytest.raises(RuntimeError):
        fails_after_counting()
    assert _started(kind) == 0
    with make_session.begin() as session:
        session.execute(text("SELECT 1"))
        count_after_commit(session, SAGAS_STARTED, kind)
        assert _started(kind) == 0  # not before the commit
    assert _started(kind) == 1
    with make_session.begin() as session:  # the same kind of session again: nothing left over to count
        session.execute(text("SELECT 1"))
    assert _started(kind) == 1
    make_session.kw["bind"].dispose()
