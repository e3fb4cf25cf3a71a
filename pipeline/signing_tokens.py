"""A webhook's signing token as GitLab shows it (whsec_<base64>), and the key it holds."""

from __future__ import annotations

import base64
import binascii

SIGNING_TOKEN_PREFIX = "whsec_"
# GitLab takes a signing token only as whsec_ and the base64 of a 32-byte key (spec/gitlab.md §1).
GITLAB_KEY_BYTES = 32


def strict_b64decode(text: str) -> bytes | None:
    """Decode strict standard base64, or return None when it is not."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def signing_key(signing_token: str) -> bytes | None:
    """Return the key a signing token holds (its whsec_ prefix may be left out), or None when
    it holds none."""
    return strict_b64decode(signing_token.removeprefix(SIGNING_TOKEN_PREFIX)) or None


def is_gitlab_signing_token(text: str) -> bool:
    """Tell whether a text can be a signing token GitLab takes: the base64 of a 32-byte key,
    after its whsec_ prefix (which may be left out)."""
    key = signing_key(text)
    return key is not None and len(key) == GITLAB_KEY_BYTES
