from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_sessionmaker(database_url: str) -> sessionmaker[Session]:
    engine = create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    return sessionmaker(engine, expire_on_commit=False)
