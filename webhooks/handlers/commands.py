"""Whether a note gives a command: a line of its own, outside code and quotes, as GitLab reads its
quick actions."""

from __future__ import annotations

import bisect
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
    earlier `/retest` in a reply, or showing it as an example, asks for nothing. A block left open
    hides nothing, since GitLab skips only closed ones: the lines after its opening are text.
    """
    wanted = command.strip().casefold()
    lines = text.splitlines()
    closing_line = _closing_lines(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        if index in closing_line:
            index = closing_line[index] + 1
            continue
        index += 1
        if FENCE.match(line) or INDENTED_CODE.match(line) or QUOTED.match(line):
            continue
        if line.strip().casefold() == wanted:
            return True
    return False


def _closing_lines(lines: list[str]) -> dict[int, int]:
    """Map each fence line to the first later line that would close the block it opens.

    Read once from the end, so that a note of many fences left open takes linear time: for each
    fence character, the closing lines still ahead, nearest last, each kept only while no nearer
    one is at least as long (so their lengths fall towards the end of the list).
    """
    ahead: dict[str, tuple[list[int], list[int]]] = {}  # character: (line indexes, -lengths)
    closing_line: dict[int, int] = {}
    for index in range(len(lines) - 1, -1, -1):
        fence = FENCE.match(lines[index])
        if not fence:
            continue
        opening = fence.group(1)
        indexes, negative_lengths = ahead.setdefault(opening[0], ([], []))
        nearest_long_enough = bisect.bisect_right(negative_lengths, -len(opening)) - 1
        if nearest_long_enough >= 0:
            closing_line[index] = indexes[nearest_long_enough]
        if _closes(opening, lines[index]):
            while negative_lengths and -negative_lengths[-1] <= len(opening):
                indexes.pop()
                negative_lengths.pop()
            indexes.append(index)
            negative_lengths.append(-len(opening))
    return closing_line


def _closes(fence: str, line: str) -> bool:
    """Return whether a fence line can close a block: nothing after the fence but spaces
    (GitLab's `>>>` closes `>>>` alone)."""
    return not line.strip()[len(fence):].strip()
