"""gradehook's GitLab error types: callers catch these, never python-gitlab's or requests'."""

from __future__ import annotations

import html
import re

# A 409 that means "someone else is writing this right now", so the same request may succeed later.
# GitLab's commit-status API says "Another update to this commit status is in progress"
# (spec/gitlab.md §4); python-gitlab retries only reasons containing "Resource lock" (§9).
_IN_PROGRESS = re.compile(r"in progress|resource lock", re.IGNORECASE)
_MAX_MESSAGE_CHARS = 300
_REDACTED = "[REDACTED]"
# An error page of a proxy in front of GitLab (nginx's 502, a load balancer's 503): HTML, whose
# title says what its markup would only clutter.
_HTML_PAGE = re.compile(r"^\s*<(?:!doctype\b|html\b|head\b|body\b)", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class GitLabError(Exception):
    """A GitLab API call failed; `status_code` is the HTTP status if an answer arrived."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientGitLabError(GitLabError):
    """GitLab is busy or unreachable (5xx, 429 after waiting, timeouts): retry later."""


class UnansweredGitLabError(TransientGitLabError):
    """The request went out but no answer came in time: GitLab may have carried it out."""


class AuthGitLabError(GitLabError):
    """GitLab refused the token (401) or its owner's rights (403)."""


class NotFoundGitLabError(GitLabError):
    """The project, merge request, branch, note or user does not exist or is not visible."""


class RejectedGitLabError(GitLabError):
    """GitLab (or a check before sending) rejected the request as invalid: do not retry."""


def error_for_status(status_code: int | None, message: str) -> GitLabError:
    """Return the error type that an HTTP status (None: no answer) stands for."""
    if status_code is None:
        return GitLabError(message)
    if status_code in (401, 403):
        return AuthGitLabError(message, status_code)
    if status_code == 404:
        return NotFoundGitLabError(message, status_code)
    if status_code in (408, 429) or status_code >= 500:
        return TransientGitLabError(message, status_code)
    if status_code == 409 and _IN_PROGRESS.search(message):
        return TransientGitLabError(message, status_code)
    if 400 <= status_code < 500:
        return RejectedGitLabError(message, status_code)
    return GitLabError(message, status_code)


def answer_text(body: str, status_code: int | None) -> str:
    """Return what an error answer says: its text, or for an HTML page its title (else its
    HTTP status), as students and staff read it in a run's reason."""
    if not _HTML_PAGE.match(body):
        return body
    title = _TITLE.search(body)
    if title is not None and title.group(1).strip():
        return html.unescape(title.group(1))
    return f"HTTP {status_code}, an HTML page" if status_code else "an HTML page"


def safe_message(text: str, secrets: tuple[str, ...]) -> str:
    """Return `text` on one line, cut to a readable length, with every secret blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS - 1] + "…"
    return text
