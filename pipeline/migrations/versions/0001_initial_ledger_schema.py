"""Initial ledger schema: deliveries, test runs, submissions, execution backends.

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 00:07:41.791308
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deliveries',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('delivery_key', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=True),
    sa.Column('project_path', sa.String(length=255), nullable=True),
    sa.Column('ref', sa.String(length=255), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('delivery_key', name=op.f('uq_deliveries_delivery_key'))
    )
    op.create_table('execution_backends',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('slug', sa.String(length=128), nullable=False),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_backends')),
    sa.UniqueConstraint('slug', name=op.f('uq_execution_backends_slug'))
    )
    backends = sa.table('execution_backends', sa.column('type', sa.String),
                        sa.column('slug', sa.String), sa.column('properties', sa.JSON))
    op.bulk_insert(backends, [{'type': 'celery', 'slug': 'python-itp', 'properties': {}}])
    op.create_table('test_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('course', sa.String(length=128), nullable=False),
    sa.Column('assignment', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=True),
    sa.Column('project_path', sa.String(length=255), nullable=False),
    sa.Column('ref', sa.String(length=255), nullable=True),
    sa.Column('commit_sha', sa.String(length=64), nullable=False),
    sa.Column('before_sha', sa.String(length=64), nullable=True),
    sa.Column('merge_request_iid', sa.Integer(), nullable=True),
    sa.Column('reference_project', sa.String(length=255), nullable=False),
    sa.Column('reference_ref', sa.String(length=255), nullable=False),
    sa.Column('reference_sha', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'passed', 'failed', 'error', 'superseded', 'cancelled', name='run_status', native_enum=False, length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('superseded_by', sa.String(length=64), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('tests_passed', sa.Integer(), nullable=True),
    sa.Column('tests_total', sa.Integer(), nullable=True),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('celery_task_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('reported_status', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cloned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_test_runs_delivery_id_deliveries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_runs'))
    )
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.create_index('ix_test_runs_branch', ['project_path', 'ref', 'assignment', 'status'], unique=False)
        batch_op.create_index('ix_test_runs_commit', ['project_path', 'commit_sha', 'assignment'], unique=False)
        batch_op.create_index('ix_test_runs_status', ['status', 'sent_at'], unique=False)

    op.create_table('submissions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('course', sa.String(length=128), nullable=False),
    sa.Column('assignment', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=True),
    sa.Column('project_path', sa.String(length=255), nullable=False),
    sa.Column('commit_sha', sa.String(length=64), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=True),
    sa.Column('merge_request_iid', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('celery_task_id', sa.String(length=64), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['test_runs.id'], name=op.f('fk_submissions_run_id_test_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions')),
    sa.UniqueConstraint('project_path', 'assignment', 'commit_sha', name='uq_submissions_commit')
    )


def downgrade() -> None:
    op.drop_table('submissions')
    with op.batch_alter_table('test_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_test_runs_status')
        batch_op.drop_index('ix_test_runs_commit')
        batch_op.drop_index('ix_test_runs_branch')

    op.drop_table('test_runs')
    op.drop_table('execution_backends')
    op.drop_table('deliveries')
