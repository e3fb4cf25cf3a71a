"""Which known name a mistyped key most likely meant, for messages that refuse the key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# A key close to a known name (letter case aside) is likely a misspelling of it: `entrypoint`,
# `qualifcation`, English's `allowedOccurrenceRange` for CodeAbility's `allowedOccuranceRange`,
# `student_project`. Looser likenesses mislead (`type` in a test is not `typeCheck`), and long
# keys are no one's misspelling.
LIKENESS = 0.8
LONGEST_MISSPELLING = 40
DID_YOU_MEAN = "; did you mean {name}?"


def did_you_mean(key: object, known: Iterable[str]) -> str:
    """Return `; did you mean <name>?` for the known name the key most likely misspells, else
    an empty string."""
    if not isinstance(key, str) or len(key) > LONGEST_MISSPELLING:
        return ""
    by_letters = {name.lower(): name for name in known}
    close = difflib.get_close_matches(key.lower(), by_letters, n=1, cutoff=LIKENESS)
    return DID_YOU_MEAN.format(name=by_letters[close[0]]) if close else ""
