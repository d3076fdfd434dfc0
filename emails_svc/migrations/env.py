"""Alembic environment: the URL comes from the service's settings, not from alembic.ini."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from emails_svc.config import get_settings
from emails_svc.models import Base

if context.config.config_file_name:
    fileConfig(context.config.config_file_name)

VERSION_TABLE = "emails_alembic_version"


def run_migrations() -> None:
    url = get_settings().database_url
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, version_table=VERSION_TABLE, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
