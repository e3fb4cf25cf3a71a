"""Pure report builders: commit status, merge request comment, badge and result page (no I/O)."""

from pipeline.reports.badge import badge_svg, score_badge
from pipeline.reports.comment import comment_marker, mr_comment_markdown
from pipeline.reports.commit_status import commit_status_payload, status_name
from pipeline.reports.model import (PHASES, RUN_STATUSES, ReportInputError, ReportView,
                                    RunSummary, read_report)
from pipeline.reports.page import result_page_html

__all__ = [
    "badge_svg", "score_badge", "comment_marker", "mr_comment_markdown", "commit_status_payload",
    "status_name", "PHASES", "RUN_STATUSES", "ReportInputError", "ReportView", "RunSummary",
    "read_report", "result_page_html",
]
