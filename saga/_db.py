"""Database sessions, built the same way by every service: the pools, and the request's sessions.

Each service's lifespan sets ``app.state.sessions`` (``make_sessionmaker``) and ``app.state.reads``
(``reads_of``); its ``deps.py`` hands endpoints ``SessionDep`` and ``ReadSessionDep``.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

# Every service's MetaData: constraints and indexes named the same way in each database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_sessionmaker(database_url: str) -> sessionmaker[Session]:
    # No pre-ping: a round trip on every checkout. After a database restart the first query
    # on a stale connection fails (503, or a task retry) and SQLAlchemy renews the whole pool.
    engine = create_engine(database_url, pool_size=10, max_overflow=10)
    return sessionmaker(engine, expire_on_commit=False)


def reads_of(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for plain reads: autocommit, so no BEGIN and COMMIT round trips."""
    engine = sessions.kw["bind"]
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)


def dispose(sessions: sessionmaker[Session]) -> None:
    """Close the pool's connections (at the end of the lifespan)."""
    sessions.kw["bind"].dispose()


@contextmanager
def session_pools(database_url: str) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    """A lifespan's sessions and read sessions (``app.state.sessions`` and ``app.state.reads``), closed at its end."""
    sessions = make_sessionmaker(database_url)
    try:
        yield sessions, reads_of(sessions)
    finally:
        dispose(sessions)


def get_session(request: Request) -> Iterator[Session]:
    """The request's transaction: committed when the endpoint returns, rolled back on error."""
    with request.app.state.sessions.begin() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for reading only (the read pool), closed when the endpoint returns."""
    with request.app.state.reads() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """For an endpoint that commits before it answers (then publishes, then waits): its own transactions."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def get_read_session_factory(request: Request) -> sessionmaker[Session]:
    """For an endpoint that reads more than once (polling a saga): sessions of the read pool."""
    reads: sessionmaker[Session] = request.app.state.reads
    return reads


ReadSessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_read_session_factory)]
