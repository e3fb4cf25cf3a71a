"""The submission limit and the count of used submissions as judged, for every later comment.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_limit', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('submissions_used', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('submissions_used')
        batch_op.drop_column('submission_limit')
