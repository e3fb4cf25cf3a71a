"""Per-project badge keys: derived from the configured badge secret, checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

# The first 16 bytes of the HMAC: 128 bits, 22 URL-safe characters.
KEY_BYTES = 16


def badge_key(secret: str, project_id: int) -> str:
    """Return the key of a project's badge URLs: HMAC-SHA256 of its id, URL-safe base64."""
    digest = hmac.new(secret.encode(), str(project_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:KEY_BYTES]).decode().rstrip("=")


def badge_key_matches(secret: str, project_id: int, given: str | None) -> bool:
    """Tell, in constant time, whether `given` is the project's badge key."""
    return hmac.compare_digest(badge_key(secret, project_id).encode(),
                               (given or "").encode("utf-8", "surrogatepass"))
