"""index: user_account by lower(email), for the login's lookup of any account

Revision ID: 0003_index_email_lower
Revises: 0002
Create Date: 2026-11-24 02:10:00

Login (and restore) find an account by lower(email) among all but purged accounts, failed
registrations included, so the partial unique index (live registrations only) cannot serve it:
without this index the lookup read the whole table (143 ms at 100,000 users). Built
CONCURRENTLY, so a large table keeps taking writes while it builds. Only an index: the model
(users_svc/models.py) should declare it too.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_index_email_lower'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index('ix_user_account_email_lower', 'user_account', [sa.literal_column('lower(email)')], postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_user_account_email_lower', table_name='user_account', postgresql_concurrently=True, if_exists=True)
