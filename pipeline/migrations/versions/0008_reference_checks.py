"""What the reconciler last met fetching each course's reference, for the health answer.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reference_checks',
                    sa.Column('course', sa.String(length=128), nullable=False),
                    sa.Column('reference_project', sa.String(length=255), nullable=False),
                    sa.Column('reference_branch', sa.String(length=255), nullable=False),
                    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('problem', sa.Text(), nullable=True),
                    sa.PrimaryKeyConstraint('course', name=op.f('pk_reference_checks')))


def downgrade() -> None:
    op.drop_table('reference_checks')
