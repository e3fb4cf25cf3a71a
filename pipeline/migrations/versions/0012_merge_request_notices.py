"""Merge requests to be told that their commit is handed in through another, until they are.

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merge_request_notices',
                    sa.Column('id', sa.String(length=32), nullable=False),
                    sa.Column('submission_id', sa.String(length=32), nullable=False),
                    sa.Column('merge_request_iid', sa.Integer(), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('told_at', sa.DateTime(timezone=True), nullable=True),
                    sa.ForeignKeyConstraint(
                        ['submission_id'], ['submissions.id'], ondelete='CASCADE',
                        name=op.f('fk_merge_request_notices_submission_id_submissions')),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_merge_request_notices')),
                    sa.UniqueConstraint('submission_id', 'merge_request_iid',
                                        name=op.f('uq_merge_request_notices')))
    op.create_index('ix_merge_request_notices_untold', 'merge_request_notices',
                    ['told_at', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_merge_request_notices_untold', table_name='merge_request_notices')
    op.drop_table('merge_request_notices')
