"""Runs that the worker must diff, note-command requesters, and discovered course assignments.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_diff', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('base_branch', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('requested_by_user_id', sa.BigInteger(), nullable=True))
    op.create_table('course_assignments',
                    sa.Column('course', sa.String(length=128), nullable=False),
                    sa.Column('directory', sa.String(length=255), nullable=False),
                    sa.Column('reference_sha', sa.String(length=64), nullable=False),
                    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('course', 'directory',
                                            name=op.f('pk_course_assignments')))


def downgrade() -> None:
    op.drop_table('course_assignments')
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.drop_column('requested_by_user_id')
        batch_op.drop_column('base_branch')
        batch_op.drop_column('needs_diff')
