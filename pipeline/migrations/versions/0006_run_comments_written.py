"""When a run's merge request comments were brought up to date, so lost updates are redone.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commented_at', sa.DateTime(timezone=True),
                                      nullable=True))
    # Runs reported before this revision count as commented: only new losses are redone.
    op.execute("UPDATE test_runs SET commented_at = reported_at "
               "WHERE reported_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.drop_column('commented_at')
