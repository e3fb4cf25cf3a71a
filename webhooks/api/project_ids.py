"""Match a project's rows by its GitLab id, also those recorded without it under its path."""

from __future__ import annotations

from sqlalchemy import and_, or_, select, union

from pipeline.ledger.models import Submission, TestRun


def of_project_id(id_column, path_column, project_id: int):
    """Return a condition on a table's project columns that holds for the project of an id:
    rows with that id, and rows recorded without an id (GitLab did not answer when they were
    made) under a path the ledger knows the id by."""
    known_paths = union(select(TestRun.project_path).where(TestRun.project_id == project_id),
                        select(Submission.project_path)
                        .where(Submission.project_id == project_id))
    return or_(id_column == project_id,
               and_(id_column.is_(None), path_column.in_(known_paths.scalar_subquery())))
