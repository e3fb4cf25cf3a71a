"""Sign a webhook delivery as GitLab does (Standard Webhooks, `webhook-signature: v1,<base64>`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SIGNING_TOKEN_PREFIX = "whsec_"


def new_signing_key() -> tuple[bytes, str]:
    """Return a fresh key and the signing token GitLab would show for it."""
    key = secrets.token_bytes(32)
    return key, SIGNING_TOKEN_PREFIX + base64.b64encode(key).decode()


def signature(body: bytes, webhook_id: str, timestamp: int, key: bytes) -> str:
    """Return the `v1,<base64>` HMAC-SHA256 of `<id>.<timestamp>.<body>`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_headers(body: bytes, webhook_id: str, timestamp: int, key: bytes) -> dict[str, str]:
    """Return the three headers of a signed delivery."""
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(body, webhook_id, timestamp, key)}
