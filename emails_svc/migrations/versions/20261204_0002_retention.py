"""index: saga_step_log by updated_at and settled mail by created_at, for the retention job

Revision ID: 0002_retention
Revises: 0001
Create Date: 2026-12-04 13:30:00

The relay prunes ledger rows whose last change is older than EMAILS_LEDGER_RETENTION_SECONDS and
sent or failed mail written longer ago than EMAILS_MAIL_RETENTION_SECONDS; the indexes keep its
batches from reading the tables (the second holds settled mail only: queued mail is never
pruned). Built CONCURRENTLY, so large tables keep taking writes while they build.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002_retention'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index('ix_saga_step_log_updated_at', 'saga_step_log', ['updated_at'], postgresql_concurrently=True, if_not_exists=True)
        op.create_index(
            'ix_message_settled_created_at', 'message', ['created_at'],
            postgresql_where=sa.text("status IN ('sent', 'failed')"), postgresql_concurrently=True, if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_message_settled_created_at', table_name='message', postgresql_concurrently=True, if_exists=True)
        op.drop_index('ix_saga_step_log_updated_at', table_name='saga_step_log', postgresql_concurrently=True, if_exists=True)
