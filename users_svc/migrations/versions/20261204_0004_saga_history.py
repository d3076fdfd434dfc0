"""saga history: every saga's events, the operator role, a saga's need for attention, the search's indexes

Revision ID: 0004_saga_history
Revises: 0003_index_email_lower
Create Date: 2026-12-04 13:30:00

saga_event is append-only: one row per thing that happened to a saga, unique per (saga, type,
step, attempt, round: the saga's re-drive count) so a redelivered message writes nothing twice;
that index also finds a saga's events (no second index: it would cost as much space again, for
the few dozen rows of one saga). The operators' search lists sagas
newest first, filtered by kind, status or needing attention: an index for each. Those on saga are
built CONCURRENTLY, so a large table keeps taking writes while they build. Sagas started before
this revision have no history before it.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_saga_history'
down_revision: Union[str, Sequence[str], None] = '0003_index_email_lower'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_SEARCH_INDEXES = [
    ('ix_saga_created_at_id', ['created_at DESC', 'id DESC'], None),
    ('ix_saga_kind_created_at_id', ['kind', 'created_at DESC', 'id DESC'], None),
    ('ix_saga_status_created_at_id', ['status', 'created_at DESC', 'id DESC'], None),
    ('ix_saga_attention_created_at_id', ['created_at DESC', 'id DESC'], 'needs_attention'),
]


def upgrade() -> None:
    op.add_column('user_account', sa.Column('is_operator', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('saga', sa.Column('needs_attention', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('saga', sa.Column('attention_note', sa.Text(), nullable=True))
    op.create_table(
        'saga_event',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('saga_id', sa.Uuid(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('step', sa.String(length=64), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('actor', sa.String(length=320), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('round', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.ForeignKeyConstraint(['saga_id'], ['saga.id'], name=op.f('fk_saga_event_saga_id_saga'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saga_event')),
    )
    op.create_index(
        'uq_saga_event_once',
        'saga_event',
        ['saga_id', 'type', sa.text("coalesce(step, '')"), sa.text('coalesce(attempt, 0)'), 'round'],
        unique=True,
    )
    with op.get_context().autocommit_block():
        for name, columns, where in _SEARCH_INDEXES:
            op.create_index(
                name,
                'saga',
                [sa.text(column) for column in columns],
                postgresql_where=sa.text(where) if where else None,
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, _, _ in reversed(_SEARCH_INDEXES):
            op.drop_index(name, table_name='saga', postgresql_concurrently=True, if_exists=True)
    op.drop_index('uq_saga_event_once', table_name='saga_event')
    op.drop_table('saga_event')
    op.drop_column('saga', 'attention_note')
    op.drop_column('saga', 'needs_attention')
    op.drop_column('user_account', 'is_operator')
