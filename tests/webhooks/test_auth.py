"""verify_delivery: Standard Webhooks signatures, the secret token, and who must send what."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from webhooks import auth
from webhooks.auth import AuthError, verify_delivery

NOW = 1_760_000_000
TOLERANCE = 300
KEY = bytes(range(32))
SIGNING_TOKEN = "whsec_" + base64.b64encode(KEY).decode()
SECRET = "s3cret-token"
BODY = b'{"object_kind": "push"}'
DELIVERY_ID = "3a427872-00df-429c-9bc9-a9475de2efe4"


def sign(body: bytes = BODY, *, delivery_id: str = DELIVERY_ID, timestamp: int = NOW,
         key: bytes = KEY) -> str:
    """Return one `v1,<base64>` entry as GitLab computes it (spec §1)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(signature: str | None = None, *, timestamp: int = NOW,
                   **extra: str) -> dict[str, str]:
    """Return the headers of a signed delivery."""
    return {"webhook-id": DELIVERY_ID, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature if signature is not None else sign(), **extra}


def verify(headers, body: bytes = BODY, *, secret_token: str = "",
           signing_token: str = SIGNING_TOKEN, require_signature: bool = False,
           now: float = NOW) -> None:
    """Call verify_delivery with this module's defaults."""
    verify_delivery(headers, body, secret_token=secret_token, signing_token=signing_token,
                    require_signature=require_signature, tolerance_seconds=TOLERANCE, now=now)


def refusal(headers, body: bytes = BODY, **kwargs) -> str:
    """Return the reason a delivery is refused with."""
    with pytest.raises(AuthError) as caught:
        verify(headers, body, **kwargs)
    return caught.value.reason


def test_standard_webhooks_published_test_vector_is_accepted():
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    verify(headers, b'{"test": 2432232314}', signing_token="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
           now=1614265330)


def test_a_valid_signature_is_accepted():
    verify(signed_headers(), require_signature=True)


def test_header_names_are_case_insensitive():
    verify({"Webhook-Id": DELIVERY_ID, "WEBHOOK-TIMESTAMP": str(NOW),
            "Webhook-Signature": sign()})


def test_a_signature_made_with_another_key_is_refused():
    assert refusal(signed_headers(sign(key=b"k" * 32))) == auth.REASON_SIGNATURE_MISMATCH


def test_a_changed_body_is_refused():
    assert refusal(signed_headers(), BODY + b" ") == auth.REASON_SIGNATURE_MISMATCH


def test_a_changed_webhook_id_is_refused():
    headers = signed_headers(**{"webhook-id": "another-id"})
    assert refusal(headers) == auth.REASON_SIGNATURE_MISMATCH


def test_a_replayed_body_under_a_fresh_timestamp_is_refused():
    replay = signed_headers(sign(timestamp=NOW - 1000), timestamp=NOW)
    assert refusal(replay) == auth.REASON_SIGNATURE_MISMATCH


def test_a_stale_timestamp_is_refused_even_with_a_matching_signature():
    old = NOW - TOLERANCE - 1
    assert refusal(signed_headers(sign(timestamp=old), timestamp=old)) == \
        auth.REASON_TIMESTAMP_STALE


def test_a_future_timestamp_beyond_tolerance_is_refused():
    later = NOW + TOLERANCE + 1
    assert refusal(signed_headers(sign(timestamp=later), timestamp=later)) == \
        auth.REASON_TIMESTAMP_FUTURE


@pytest.mark.parametrize("skew", [-TOLERANCE, TOLERANCE])
def test_timestamps_at_the_edge_of_tolerance_are_accepted(skew):
    verify(signed_headers(sign(timestamp=NOW + skew), timestamp=NOW + skew))


@pytest.mark.parametrize("entries", [
    lambda good: f"v1,{base64.b64encode(b'x' * 32).decode()} {good}",
    lambda good: f"{good} v1,{base64.b64encode(b'y' * 32).decode()}",
    lambda good: f"v2,c29tZXRoaW5nIGVsc2U= {good}",
    lambda good: f"  {good}\t",
])
def test_one_valid_signature_among_several_is_enough(entries):
    verify(signed_headers(entries(sign())))


def test_every_entry_is_compared(monkeypatch):
    compared = []
    real = hmac.compare_digest

    def recording(a, b):
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    wrong = base64.b64encode(b"x" * 32).decode()
    verify(signed_headers(f"{sign()} v1,{wrong} v1,{wrong}"))
    assert len(compared) == 3


def test_a_matching_token_does_not_replace_a_required_signature():
    headers = {"X-Gitlab-Token": SECRET}
    assert refusal(headers, secret_token=SECRET, require_signature=True) == \
        auth.REASON_SIGNATURE_REQUIRED


def test_a_bad_signature_is_not_rescued_by_a_matching_token():
    headers = signed_headers(sign(key=b"k" * 32), **{"X-Gitlab-Token": SECRET})
    assert refusal(headers, secret_token=SECRET) == auth.REASON_SIGNATURE_MISMATCH


def test_without_a_signature_the_token_is_checked():
    verify({"X-Gitlab-Token": SECRET}, secret_token=SECRET)
    assert refusal({"X-Gitlab-Token": SECRET + "x"}, secret_token=SECRET) == \
        auth.REASON_TOKEN_MISMATCH


def test_a_non_ascii_token_is_compared_without_crashing():
    assert refusal({"x-gitlab-token": "tökén"}, secret_token=SECRET) == \
        auth.REASON_TOKEN_MISMATCH
    verify({"x-gitlab-token": "tökén"}, secret_token="tökén")


@pytest.mark.parametrize("headers, configured, reason", [
    (signed_headers(), {"signing_token": ""}, auth.REASON_NO_SIGNING_TOKEN),
    (signed_headers(), {"signing_token": "", "secret_token": SECRET},
     auth.REASON_NO_SIGNING_TOKEN),
    ({"X-Gitlab-Token": SECRET}, {"signing_token": ""}, auth.REASON_NO_SECRET),
    ({}, {"signing_token": "", "secret_token": SECRET}, auth.REASON_TOKEN_MISSING),
    ({}, {}, auth.REASON_SIGNATURE_REQUIRED),
    ({"X-Gitlab-Token": SECRET}, {}, auth.REASON_NO_SECRET),
])
def test_credentials_on_only_one_side_are_refused(headers, configured, reason):
    assert refusal(headers, **configured) == reason


def test_nothing_configured_and_nothing_sent_is_accepted():
    verify({}, signing_token="", secret_token="")


def test_the_token_is_a_fallback_when_both_are_configured_and_no_signature_came():
    verify({"X-Gitlab-Token": SECRET}, secret_token=SECRET)


@pytest.mark.parametrize("edit, reason", [
    ({"webhook-id": None}, auth.REASON_ID_MISSING),
    ({"webhook-id": ""}, auth.REASON_ID_MALFORMED),
    ({"webhook-id": "a b"}, auth.REASON_ID_MALFORMED),
    ({"webhook-id": "id\u00e9"}, auth.REASON_ID_MALFORMED),
    ({"webhook-timestamp": None}, auth.REASON_TIMESTAMP_MISSING),
    ({"webhook-timestamp": "soon"}, auth.REASON_TIMESTAMP_MALFORMED),
    ({"webhook-timestamp": "-5"}, auth.REASON_TIMESTAMP_MALFORMED),
    ({"webhook-timestamp": f"{NOW}.5"}, auth.REASON_TIMESTAMP_MALFORMED),
    ({"webhook-timestamp": " 1760000000"}, auth.REASON_TIMESTAMP_MALFORMED),
    ({"webhook-timestamp": "١٧٦٠٠٠٠٠٠٠"}, auth.REASON_TIMESTAMP_MALFORMED),
    ({"webhook-timestamp": "9" * 400}, auth.REASON_TIMESTAMP_MALFORMED),
    ({"webhook-signature": ""}, auth.REASON_SIGNATURE_EMPTY),
    ({"webhook-signature": "   "}, auth.REASON_SIGNATURE_EMPTY),
    ({"webhook-signature": "v1"}, auth.REASON_SIGNATURE_MALFORMED),
    ({"webhook-signature": "v1,not base64!"}, auth.REASON_SIGNATURE_MALFORMED),
    ({"webhook-signature": "v1,ünï"}, auth.REASON_SIGNATURE_MALFORMED),
    ({"webhook-signature": "v1,abc"}, auth.REASON_SIGNATURE_MALFORMED),
    ({"webhook-signature": "v1a,c2lnbmF0dXJl"}, auth.REASON_SIGNATURE_VERSION),
    ({"webhook-signature": "V1,c2lnbmF0dXJl v2,c2lnbmF0dXJl"}, auth.REASON_SIGNATURE_VERSION),
])
def test_malformed_signature_headers_are_refused_with_a_reason(edit, reason):
    headers = signed_headers()
    for name, value in edit.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    assert refusal(headers) == reason


@pytest.mark.parametrize("token", ["whsec_not base64", "whsec_", "whsec_@@@@"])
def test_a_misconfigured_signing_token_refuses_every_signed_delivery(token):
    assert refusal(signed_headers(), signing_token=token) == auth.REASON_BAD_SIGNING_TOKEN


def test_a_signing_token_without_the_whsec_prefix_is_accepted_as_base64():
    verify(signed_headers(), signing_token=base64.b64encode(KEY).decode())
