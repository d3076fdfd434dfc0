from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_sessionmaker(database_url: str) -> sessionmaker[Session]:
    # No pre-ping: a round trip on every checkout. After a database restart the first query
    # on a stale connection fails (503, or a task retry) and SQLAlchemy renews the whole pool.
    engine = create_engine(database_url, pool_size=10, max_overflow=10)
    return sessionmaker(engine, expire_on_commit=False)


def reads_of(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for plain reads: autocommit, so no BEGIN and COMMIT round trips."""
    engine = sessions.kw["bind"]
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
