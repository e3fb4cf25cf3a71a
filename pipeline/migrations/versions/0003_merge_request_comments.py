"""gradehook's merge request comments, one row per merge request.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merge_request_comments',
                    sa.Column('project_path', sa.String(length=255), nullable=False),
                    sa.Column('merge_request_iid', sa.Integer(), nullable=False),
                    sa.Column('note_id', sa.BigInteger(), nullable=True),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('project_path', 'merge_request_iid',
                                            name=op.f('pk_merge_request_comments')))


def downgrade() -> None:
    op.drop_table('merge_request_comments')
