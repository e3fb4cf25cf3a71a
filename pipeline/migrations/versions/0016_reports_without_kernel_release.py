"""Reports no longer name the grading host's kernel release and build.

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# environment.platform was platform.platform() of the worker, 'Linux-6.1.0-13-amd64-x86_64-with-
# glibc2.36', which GET /api/runs shows staff; new reports hold 'Linux-x86_64-with-glibc2.36'.
# A report names one of the few kernels its workers ran: each one's reports are rewritten at once.
PLATFORMS = {
    "postgresql": "SELECT DISTINCT report -> 'environment' ->> 'platform' FROM test_runs "
                  "WHERE report -> 'environment' ->> 'platform' IS NOT NULL",
    "sqlite": "SELECT DISTINCT json_extract(report, '$.environment.platform') FROM test_runs "
              "WHERE json_extract(report, '$.environment.platform') IS NOT NULL",
}
REWRITES = {
    "postgresql": "UPDATE test_runs SET report = jsonb_set(report, '{environment,platform}', "
                  "to_jsonb(CAST(:new AS text))) WHERE report -> 'environment' ->> 'platform' "
                  "= :old",
    "sqlite": "UPDATE test_runs SET report = json_set(report, '$.environment.platform', :new) "
              "WHERE json_extract(report, '$.environment.platform') = :old",
}
WITH_LIBC = "-with-"


def without_kernel(platform: str) -> str:
    """Return a platform.platform() name without its kernel's release: the system, the machine
    (the last part before the C library, which has no '-') and the C library, if named."""
    head, with_libc, libc = platform.partition(WITH_LIBC)
    parts = head.split("-")
    if len(parts) > 2:
        head = f"{parts[0]}-{parts[-1]}"
    return head + with_libc + libc


def upgrade() -> None:
    connection = op.get_bind()
    dialect = connection.dialect.name
    for (old,) in connection.execute(sa.text(PLATFORMS[dialect])).all():
        new = without_kernel(old)
        if new != old:
            connection.execute(sa.text(REWRITES[dialect]), {"old": old, "new": new})


def downgrade() -> None:
    """Leave the reports as they are: no code reads the kernel's release."""
