"""Reports no longer name where the worker's python lies on the grading host.

Revision ID: 0015
Revises: 0014
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# environment.executable held the worker's python (its virtual environment's folder), which
# GET /api/runs shows staff; new reports leave it out.
REMOVALS = {
    "postgresql": "UPDATE test_runs SET report = report #- '{environment,executable}' "
                  "WHERE report -> 'environment' -> 'executable' IS NOT NULL",
    "sqlite": "UPDATE test_runs SET report = json_remove(report, '$.environment.executable') "
              "WHERE json_extract(report, '$.environment.executable') IS NOT NULL",
}


def upgrade() -> None:
    op.execute(REMOVALS[op.get_bind().dialect.name])


def downgrade() -> None:
    """Leave the reports as they are: no code reads where the worker's python lay."""
