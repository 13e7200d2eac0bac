"""Webhooks to an enterprise's own system, signed with HMAC-SHA256 over timestamp and body.

Headers: ``X-Onestop-Timestamp`` (Unix seconds) and ``X-Onestop-Signature: v1=<hex>[, v1=<hex>]``,
where the hex is HMAC-SHA256(secret, f"{timestamp}.{body}"). While a rotated secret is still valid
both signatures are sent, so the receiver can switch secrets without losing a message. Redirects are
not followed: the registered URL is the only place a notice goes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from notify.channels.base import ChannelError, OutboundMessage, SendOutcome
from notify.models import Channel, DeliveryStatus

SIGNATURE_HEADER = "X-Onestop-Signature"
TIMESTAMP_HEADER = "X-Onestop-Timestamp"
DELIVERY_HEADER = "X-Onestop-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``timestamp.body``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    secret: str, *, timestamp: str, body: bytes, header: str, tolerance: float = 300.0
) -> bool:
    """Receiver side: a fresh timestamp and one matching ``v1=`` signature."""
    try:
        if abs(time.time() - int(timestamp)) > tolerance:
            return False
    except ValueError:
        return False
    expected = sign(secret, timestamp, body)
    candidates = [p.strip().removeprefix("v1=") for p in header.split(",")]
    return any(hmac.compare_digest(expected, c) for c in candidates)


class WebhookSender:
    """Posts the notice as JSON; any 2xx is delivered, anything else is retried."""

    channel = Channel.WEBHOOK

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, message: OutboundMessage) -> SendOutcome:
        """Sign and post."""
        if not message.secrets:
            raise ChannelError("webhook subscription no longer exists", permanent=True)
        body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        signature = ", ".join(f"v1={sign(s, timestamp, body)}" for s in message.secrets)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature,
            DELIVERY_HEADER: str(message.delivery_id),
        }
        try:
            response = await self._http.post(
                message.address, content=body, headers=headers, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise ChannelError(f"webhook HTTP {response.status_code}: {response.text[:300]}")
        return SendOutcome(DeliveryStatus.DELIVERED)

    async def aclose(self) -> None:
        """The HTTP client belongs to the app."""
