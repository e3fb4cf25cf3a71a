"""Per-project badge keys (from the badge secret, checked in constant time) and keyed badge URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

# GitLab writes each project's default branch in its badge URLs where this stands (spec §5).
DEFAULT_BRANCH_PLACEHOLDER = "%{default_branch}"
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


def badge_urls(base_url: str, secret: str, project_id: int, assignment: str,
               ref: str | None) -> tuple[str, str]:
    """Return a project's keyed badge: (link to its latest result, image URL).

    Without a ref, the badge follows the project's default branch.
    """
    shown_ref = DEFAULT_BRANCH_PLACEHOLDER if ref is None else urllib.parse.quote(ref, safe="")
    query = f"ref={shown_ref}&key={badge_key(secret, project_id)}"
    directory = urllib.parse.quote(assignment)
    return (f"{base_url}/results/latest/{project_id}/{directory}?{query}",
            f"{base_url}/badges/{project_id}/{directory}.svg?{query}")
