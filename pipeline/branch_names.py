"""Which branch names gradehook hands to git: git's rules, and none that could pass as an option."""

from __future__ import annotations

import re
import unicodedata

REF_FORBIDDEN = re.compile(r"(\.\.|@\{|//|[\x00-\x20\x7f~^:?*\[\\])")
# Unicode refused in branch names though git takes it: controls, format characters (bidi
# overrides, zero-width), lone surrogates, private use, unassigned, and odd spaces and breaks.
ODD_UNICODE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
MAX_BRANCH_NAME_LENGTH = 255


def is_branch_name(ref: object) -> bool:
    """Tell whether git would accept a ref or branch name and no part can pass as an option.

    git check-ref-format's rules, plus: no component starts with '-' (a name taken alone
    must not read as an option), and no odd unicode.
    """
    return (isinstance(ref, str) and 0 < len(ref) <= MAX_BRANCH_NAME_LENGTH and ref != "@"
            and not ref.startswith("/") and not ref.endswith(("/", ".", ".lock"))
            and not REF_FORBIDDEN.search(ref)
            and not any(part.startswith((".", "-")) or part.endswith(".lock")
                        for part in ref.split("/"))
            and (ref.isascii()  # controls and spaces are refused above
                 or not any(unicodedata.category(ch) in ODD_UNICODE_CATEGORIES for ch in ref)))
