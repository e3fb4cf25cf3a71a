"""Whether a note gives a command: a line of its own, outside code and quotes, as GitLab reads its
quick actions."""

from __future__ import annotations

import re

# A fenced code block opens with three or more backticks or tildes (CommonMark) and closes with a
# line of at least as many of the same character; GitLab's multi-line quote opens and closes with
# `>>>`. Up to three spaces may come before either.
FENCE = re.compile(r" {0,3}(`{3,}|~{3,}|>{3})")
# Four spaces or a tab make an indented code block; `>` starts a quoted line.
INDENTED_CODE = re.compile(r"( {4}|\t)")
QUOTED = re.compile(r" {0,3}>")


def gives_command(text: str, command: str) -> bool:
    """Return whether a line of the note is the command and nothing else, in any letter case.

    Lines in closed code blocks, in quotes and in indented code do not count, so quoting an
    earlier `/retest` in a reply, or showing it as an example, asks for nothing.
    """
    return _gives(text.splitlines(), command.strip().casefold())


def _gives(lines: list[str], wanted: str) -> bool:
    """Return whether one of the lines is the command; a block left open hides nothing, since
    GitLab skips only closed ones, so the lines after its opening are read again as text."""
    closing_fence: str | None = None
    opened_at = 0
    for index, line in enumerate(lines):
        fence = FENCE.match(line)
        if closing_fence is not None:
            if fence and _closes(fence.group(1), closing_fence, line):
                closing_fence = None
            continue
        if fence:
            closing_fence, opened_at = fence.group(1), index
            continue
        if INDENTED_CODE.match(line) or QUOTED.match(line):
            continue
        if line.strip().casefold() == wanted:
            return True
    return closing_fence is not None and _gives(lines[opened_at + 1:], wanted)


def _closes(fence: str, opening: str, line: str) -> bool:
    """Return whether a fence line closes the block `opening` opened: same character, at least
    as long, nothing after it but spaces (GitLab's `>>>` closes `>>>` alone)."""
    if fence[0] != opening[0] or len(fence) < len(opening):
        return False
    return not line.strip()[len(fence):].strip()
