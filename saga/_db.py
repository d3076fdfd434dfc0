"""Database sessions, built the same way by every service: the pools, and the request's sessions.

Each service's lifespan sets ``app.state.sessions`` (``make_sessionmaker``) and ``app.state.reads``
(``reads_of``); its ``deps.py`` hands endpoints ``SessionDep`` and ``ReadSessionDep``.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine
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


def read_engine(database_url: str) -> Engine:
    """Autocommit connections for reads: no BEGIN and COMMIT round trips.

    A pool of its own, so a checkout never switches a connection's isolation level (a call into
    the driver on every checkout and check-in, with a shared pool), and no overflow: a burst of
    reads waits a moment for a pooled connection rather than opening connections and closing
    them again on check-in (each a new PostgreSQL backend).
    """
    return create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=0)


def reads_of(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for plain reads, on a pool of their own (``read_engine``) beside the writes' pool."""
    engine: Engine = sessions.kw["bind"]
    return sessionmaker(read_engine(engine.url.render_as_string(hide_password=False)), expire_on_commit=False)


def dispose(*pools: sessionmaker[Session]) -> None:
    """Close the pools' connections (at the end of the lifespan)."""
    for sessions in pools:
        sessions.kw["bind"].dispose()


@contextmanager
def session_pools(database_url: str) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    """A lifespan's sessions and read sessions (``app.state.sessions`` and ``app.state.reads``), closed at its end."""
    sessions = make_sessionmaker(database_url)
    reads = reads_of(sessions)
    try:
        yield sessions, reads
    finally:
        dispose(sessions, reads)


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


async def get_read_engine(request: Request) -> Engine:
    """The read pool's engine, for the hot reads in Core (each service's ``queries.py``). Async:
    handing it over costs no thread hop."""
    engine: Engine = request.app.state.reads.kw["bind"]
    return engine


ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]
