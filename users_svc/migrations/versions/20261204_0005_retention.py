"""retention: published outbox rows found by age; a saga abandoned past its deadline

Revision ID: 0005_retention
Revises: 0004_saga_history
Create Date: 2026-12-04 13:30:00

The relay prunes outbox rows published longer ago than USERS_OUTBOX_RETENTION_SECONDS; the
index (published rows only) keeps its batches from reading the table. The watchdog marks a saga
that passed its deadline unfinished (saga.SAGA_DEADLINE) in `abandoned_at` instead of
re-driving it. The index is built CONCURRENTLY, so a large table keeps taking writes meanwhile;
the column is nullable without a default, a change of the catalogue only.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005_retention'
down_revision: Union[str, Sequence[str], None] = '0004_saga_history'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('saga', sa.Column('abandoned_at', sa.DateTime(timezone=True), nullable=True))
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_outbox_message_published_at', 'outbox_message', ['published_at'],
            postgresql_where=sa.text('published_at IS NOT NULL'), postgresql_concurrently=True, if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_outbox_message_published_at', table_name='outbox_message', postgresql_concurrently=True, if_exists=True)
    op.drop_column('saga', 'abandoned_at')
