"""Submissions: where they came from, who asked, the time that counts, decision and hand-off.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False,
                                      server_default='api'))
        batch_op.add_column(sa.Column('requested_by_user_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('counted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deadline', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_submissions_run', ['run_id', 'outcome'], unique=False)
        batch_op.create_index('ix_submissions_student', ['project_path', 'assignment', 'outcome'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_student')
        batch_op.drop_index('ix_submissions_run')
        for column in ('sent_at', 'decided_at', 'deadline', 'counted_at', 'requested_by_user_id',
                       'source'):
            batch_op.drop_column(column)
