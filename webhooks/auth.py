"""Authenticate a GitLab webhook delivery by signature or secret token, without I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Mapping

from pipeline.signing_tokens import signing_key, strict_b64decode

SIGNATURE_VERSION = "v1"
MAX_WEBHOOK_ID_LENGTH = 255

REASON_NO_SIGNING_TOKEN = "a webhook-signature was sent but no signing token is configured"
REASON_SIGNATURE_REQUIRED = "a valid webhook-signature is required"
REASON_NO_SECRET = "an X-Gitlab-Token was sent but no secret token is configured"
REASON_TOKEN_MISSING = "X-Gitlab-Token is missing"
REASON_TOKEN_MISMATCH = "X-Gitlab-Token does not match"
REASON_ID_MISSING = "webhook-id is missing"
REASON_ID_MALFORMED = "webhook-id must be printable ASCII"
REASON_TIMESTAMP_MISSING = "webhook-timestamp is missing"
REASON_TIMESTAMP_MALFORMED = "webhook-timestamp must be whole Unix seconds"
REASON_TIMESTAMP_STALE = "webhook-timestamp is too old"
REASON_TIMESTAMP_FUTURE = "webhook-timestamp is too far in the future"
REASON_SIGNATURE_EMPTY = "webhook-signature has no entries"
REASON_SIGNATURE_VERSION = "webhook-signature has no v1 entry"
REASON_SIGNATURE_MALFORMED = "webhook-signature entries must be v1,<base64>"
REASON_SIGNATURE_MISMATCH = "webhook-signature does not match"
REASON_BAD_SIGNING_TOKEN = "the configured signing token is not whsec_<base64>"

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_WEBHOOK_ID_LENGTH)


class AuthError(Exception):
    """A delivery is not authentic; reason is short text fit for a 401 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_delivery(headers: Mapping[str, str], body: bytes, *, secret_token: str,
                    signing_token: str, require_signature: bool, tolerance_seconds: int,
                    now: float) -> None:
    """Accept an authentic delivery or raise AuthError.

    A `webhook-signature` is verified when present (GitLab 19.0+, Standard Webhooks); without
    one, X-Gitlab-Token is compared with the secret token, unless `require_signature`.
    Credentials on only one side (sent but not configured, or configured but not sent) are
    refused, as gidgethub does. When neither a secret nor a signing token is configured and
    none is sent, every delivery is accepted: that is the operator's choice.
    """
    lowered = {str(name).lower(): value for name, value in headers.items()}
    signature = lowered.get("webhook-signature")
    if signature is not None:
        if not signing_token:
            raise AuthError(REASON_NO_SIGNING_TOKEN)
        _verify_signature(lowered, signature, body, signing_token, tolerance_seconds, now)
        return
    if require_signature:
        raise AuthError(REASON_SIGNATURE_REQUIRED)
    _verify_token(lowered.get("x-gitlab-token"), secret_token, signing_token)


def _verify_token(token: str | None, secret_token: str, signing_token: str) -> None:
    if token is None:
        if secret_token:
            raise AuthError(REASON_TOKEN_MISSING)
        if signing_token:
            raise AuthError(REASON_SIGNATURE_REQUIRED)
        return
    if not secret_token:
        raise AuthError(REASON_NO_SECRET)
    if not hmac.compare_digest(_utf8(token), _utf8(secret_token)):
        raise AuthError(REASON_TOKEN_MISMATCH)


def _verify_signature(lowered: Mapping[str, str], signature: str, body: bytes,
                      signing_token: str, tolerance_seconds: int, now: float) -> None:
    """Check a Standard Webhooks signature as GitLab's "Verify webhook signatures" says."""
    webhook_id = lowered.get("webhook-id")
    if webhook_id is None:
        raise AuthError(REASON_ID_MISSING)
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise AuthError(REASON_ID_MALFORMED)
    timestamp = _timestamp(lowered.get("webhook-timestamp"), tolerance_seconds, now)
    digests = _signature_digests(signature)
    key = _signing_key(signing_token)
    signed = f"{webhook_id}.{timestamp}.".encode("ascii") + bytes(body)
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    # Compare with every entry, not stopping at the first match (constant time per entry).
    matches = [hmac.compare_digest(expected, digest) for digest in digests]
    if not any(matches):
        raise AuthError(REASON_SIGNATURE_MISMATCH)


def _timestamp(value: str | None, tolerance_seconds: int, now: float) -> str:
    if value is None:
        raise AuthError(REASON_TIMESTAMP_MISSING)
    if not _TIMESTAMP.fullmatch(value):
        raise AuthError(REASON_TIMESTAMP_MALFORMED)
    skew = int(value) - now
    if skew < -tolerance_seconds:
        raise AuthError(REASON_TIMESTAMP_STALE)
    if skew > tolerance_seconds:
        raise AuthError(REASON_TIMESTAMP_FUTURE)
    return value


def _signature_digests(signature: str) -> list[bytes]:
    """Return the decoded v1 digests of a header; entries of other versions are skipped."""
    entries = signature.split()
    if not entries:
        raise AuthError(REASON_SIGNATURE_EMPTY)
    digests = []
    for entry in entries:
        version, comma, encoded = entry.partition(",")
        if not comma:
            raise AuthError(REASON_SIGNATURE_MALFORMED)
        if version != SIGNATURE_VERSION:
            continue
        digest = strict_b64decode(encoded)
        if digest is None:
            raise AuthError(REASON_SIGNATURE_MALFORMED)
        digests.append(digest)
    if not digests:
        raise AuthError(REASON_SIGNATURE_VERSION)
    return digests


def _signing_key(signing_token: str) -> bytes:
    key = signing_key(signing_token)
    if key is None:
        raise AuthError(REASON_BAD_SIGNING_TOKEN)
    return key


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
