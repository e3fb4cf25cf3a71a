"""Each course's student projects as GitLab last listed them, and when and how that read went.

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('course_rosters',
                    sa.Column('course', sa.String(length=128), nullable=False),
                    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('listed_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('problems', sa.JSON().with_variant(
                        postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
                    sa.PrimaryKeyConstraint('course', name=op.f('pk_course_rosters')))
    op.create_table('roster_projects',
                    sa.Column('course', sa.String(length=128), nullable=False),
                    sa.Column('project_path', sa.String(length=255), nullable=False),
                    sa.Column('project_id', sa.BigInteger(), nullable=True),
                    sa.PrimaryKeyConstraint('course', 'project_path',
                                            name=op.f('pk_roster_projects')))


def downgrade() -> None:
    op.drop_table('roster_projects')
    op.drop_table('course_rosters')
