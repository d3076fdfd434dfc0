"""index: saga_step_log by updated_at, for the retention job

Revision ID: 0003_ledger_updated_at
Revises: 0002
Create Date: 2026-12-04 13:30:00

The retention process prunes ledger rows whose last change is older than
PROFILE_LEDGER_RETENTION_SECONDS; the index keeps its batches from reading the table. Built
CONCURRENTLY, so a large table keeps taking writes while it builds.
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0003_ledger_updated_at'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index('ix_saga_step_log_updated_at', 'saga_step_log', ['updated_at'], postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_saga_step_log_updated_at', table_name='saga_step_log', postgresql_concurrently=True, if_exists=True)
