"""Submissions withdrawn with their merge request, and how often each commit was handed in.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('hand_ins', sa.Integer(), nullable=False,
                                      server_default='1'))
    # Refusals recorded before this revision for that reason alone are withdrawn too.
    op.execute("UPDATE submissions SET withdrawn = TRUE "
               "WHERE outcome = 'refused' AND source = 'merge_request' "
               "AND reason NOT LIKE '%; %' "
               "AND (reason LIKE 'the merge request !% was closed before it was processed' "
               "OR reason LIKE 'the merge request !% now targets %, not the submission branch "
               "%: it hands nothing in')")


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('hand_ins')
        batch_op.drop_column('withdrawn')
