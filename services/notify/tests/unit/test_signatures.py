"""Webhook and receipt signatures: HMAC-SHA256 over timestamp and body."""

from __future__ import annotations

import hashlib
import hmac
import time

from notify.channels.sms import receipt_signature
from notify.channels.webhook import sign, verify


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = '{"a":"通知"}'.encode()
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("secret", "1700000000", body) == expected
    assert receipt_signature("secret", "1700000000", body) == expected


def test_verify_accepts_any_listed_signature_and_refuses_stale_or_tampered() -> None:
    body = b'{"x":1}'
    now = str(int(time.time()))
    header = f"v1={sign('new', now, body)}, v1={sign('old', now, body)}"
    assert verify("new", timestamp=now, body=body, header=header)
    assert verify("old", timestamp=now, body=body, header=header)
    assert not verify("other", timestamp=now, body=body, header=header)
    assert not verify("new", timestamp=now, body=b'{"x":2}', header=header)
    stale = str(int(time.time()) - 3600)
    assert not verify("new", timestamp=stale, body=body, header=f"v1={sign('new', stale, body)}")
    assert not verify("new", timestamp="soon", body=body, header=header)
