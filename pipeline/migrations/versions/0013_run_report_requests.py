"""When the reconciler may ask again for a run's GitLab update, and why GitLab refuses it for good.

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_requests', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('report_due_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('report_refused', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.drop_column('report_refused')
        batch_op.drop_column('report_due_at')
        batch_op.drop_column('report_requests')
