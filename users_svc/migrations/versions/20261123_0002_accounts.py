"""accounts: the saga log holds sagas of every kind; accounts can be deleted, restored, purged

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:30:00

registration_saga becomes saga, with a kind (existing rows are registrations). A user now has
several sagas, so user_id is no longer unique; one registration per user and at most one
account saga in flight per user are kept by partial unique indexes.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.rename_table('registration_saga', 'saga')
    op.execute('ALTER TABLE saga RENAME CONSTRAINT pk_registration_saga TO pk_saga')
    op.execute('ALTER TABLE saga RENAME CONSTRAINT fk_registration_saga_user_id_user_account TO fk_saga_user_id_user_account')
    op.execute('ALTER TABLE saga_step RENAME CONSTRAINT fk_saga_step_saga_id_registration_saga TO fk_saga_step_saga_id_saga')
    op.execute('ALTER TABLE outbox_message RENAME CONSTRAINT fk_outbox_message_saga_id_registration_saga TO fk_outbox_message_saga_id_saga')
    op.execute('ALTER INDEX ix_registration_saga_unfinished RENAME TO ix_saga_unfinished')
    op.add_column('saga', sa.Column('kind', sa.String(length=16), nullable=False, server_default='registration'))
    op.alter_column('saga', 'kind', server_default=None)
    op.drop_index('ix_registration_saga_user_id', table_name='saga')
    op.create_index(op.f('ix_saga_user_id'), 'saga', ['user_id'], unique=False)
    op.create_index('uq_saga_user_id_registration', 'saga', ['user_id'], unique=True, postgresql_where=sa.text("kind = 'registration'"))
    op.create_index('uq_saga_user_id_in_flight', 'saga', ['user_id'], unique=True, postgresql_where=sa.text("kind <> 'registration' AND finished_at IS NULL"))

    op.add_column('user_account', sa.Column('account_status', sa.String(length=16), nullable=False, server_default='active'))
    op.alter_column('user_account', 'account_status', server_default=None)
    op.add_column('user_account', sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('user_account', sa.Column('purge_after', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_user_account_purge_after', 'user_account', ['purge_after'], unique=False, postgresql_where=sa.text("account_status = 'deleted'"))


def downgrade() -> None:
    """Back to registrations only: the account sagas' rows go (user_id is unique again)."""
    op.drop_index('ix_user_account_purge_after', table_name='user_account', postgresql_where=sa.text("account_status = 'deleted'"))
    op.drop_column('user_account', 'purge_after')
    op.drop_column('user_account', 'deleted_at')
    op.drop_column('user_account', 'account_status')

    op.execute("DELETE FROM saga WHERE kind <> 'registration'")
    op.drop_index('uq_saga_user_id_in_flight', table_name='saga', postgresql_where=sa.text("kind <> 'registration' AND finished_at IS NULL"))
    op.drop_index('uq_saga_user_id_registration', table_name='saga', postgresql_where=sa.text("kind = 'registration'"))
    op.drop_index(op.f('ix_saga_user_id'), table_name='saga')
    op.create_index('ix_registration_saga_user_id', 'saga', ['user_id'], unique=True)
    op.drop_column('saga', 'kind')
    op.execute('ALTER INDEX ix_saga_unfinished RENAME TO ix_registration_saga_unfinished')
    op.execute('ALTER TABLE outbox_message RENAME CONSTRAINT fk_outbox_message_saga_id_saga TO fk_outbox_message_saga_id_registration_saga')
    op.execute('ALTER TABLE saga_step RENAME CONSTRAINT fk_saga_step_saga_id_saga TO fk_saga_step_saga_id_registration_saga')
    op.execute('ALTER TABLE saga RENAME CONSTRAINT fk_saga_user_id_user_account TO fk_registration_saga_user_id_user_account')
    op.execute('ALTER TABLE saga RENAME CONSTRAINT pk_saga TO pk_registration_saga')
    op.rename_table('saga', 'registration_saga')
