from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_sessionmaker(database_url: str) -> sessionmaker[Session]:
    # No pre-ping: a round trip on every checkout. After a database restart the first query
    # on a stale connection fails (503, or a task retry) and SQLAlchemy renews the whole pool.
    engine = create_engine(database_url, pool_size=10, max_overflow=10)
    return sessionmaker(engine, expire_on_commit=False)


def reads_of(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for plain reads, on a pool of their own (``read_engine``) beside the writes' pool."""
    engine: Engine = sessions.kw["bind"]
    return sessionmaker(read_engine(engine.url.render_as_string(hide_password=False)), expire_on_commit=False)


def read_engine(database_url: str) -> Engine:
    """Autocommit connections for reads: no BEGIN and COMMIT round trips.

    A pool of its own, so a checkout never switches a connection's isolation level (a call into
    the driver on every checkout and check-in, with a shared pool), and no overflow: a burst of
    reads waits a moment for a pooled connection rather than opening connections and closing
    them again on check-in (each a new PostgreSQL backend).
    """
    return create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=0)
