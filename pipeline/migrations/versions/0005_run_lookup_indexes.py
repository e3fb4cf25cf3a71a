"""Indexes for looking runs up by Celery task id and for score badges.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.create_index('ix_test_runs_task', ['celery_task_id'], unique=False)
        batch_op.create_index('ix_test_runs_badge',
                              ['project_id', 'assignment', 'ref', 'finished_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_test_runs_badge')
        batch_op.drop_index('ix_test_runs_task')
