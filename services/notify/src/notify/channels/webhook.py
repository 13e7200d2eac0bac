"""Webhooks to an enterprise's own system, signed with HMAC-SHA256 over timestamp and body.

Headers: ``X-Onestop-Timestamp`` (Unix seconds) and ``X-Onestop-Signature: v1=<hex>[, v1=<hex>]``,
where the hex is HMAC-SHA256(secret, f"{timestamp}.{body}"). While a rotated secret is still valid
both signatures are sent, so the receiver can switch secrets without losing a message. Redirects are
not followed: the registered URL is the only place a notice goes.

Before every attempt the host is resolved and each address checked (``notify.channels.egress``);
the request then goes to that checked address, with the original ``Host`` header and TLS server
name, so a DNS answer that changes between check and connect (rebinding) cannot redirect it. The
receiver's answer is never read: only its status is kept, in a neutral sentence, because staff
read delivery errors and a receiver's body is its own (and may be anything).
"""

from __future__ import annotations

import hashlib
import hmac
import http
import json
import time

import httpx

from notify.channels.base import ChannelError, OutboundMessage, SendOutcome
from notify.channels.egress import DestinationRefused, EgressPolicy, Resolver
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
    """Posts the notice as JSON to a checked public address; any 2xx is delivered."""

    channel = Channel.WEBHOOK

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        timeout: float = 5.0,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self._resolver = resolver
        # Its own client: no proxy from the environment (a proxy would resolve the name itself),
        # no redirects, and none of the internal headers the services' shared client adds. No
        # kept-alive connections either: the pool is keyed by address, and a TLS connection made
        # for one name must not carry a request for another name on the same address.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )

    async def _pinned(self, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """The URL to the checked address, the ``Host`` header and the TLS server name."""
        url = httpx.URL(address)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            ips = await self.policy.resolve(url.host, port, self._resolver)
        except DestinationRefused as exc:
            raise ChannelError(f"回调地址已拒绝：{exc.reason}", permanent=True) from exc
        except LookupError as exc:
            raise ChannelError(str(exc)) from exc
        host_header = url.netloc.decode("ascii")
        # The TLS server name is the name (A-labels), checked against the certificate as usual.
        sni = url.raw_host.decode("ascii")
        extensions = {"sni_hostname": sni} if url.scheme == "https" else {}
        return url.copy_with(host=str(ips[0])), {"Host": host_header}, extensions

    async def send(self, message: OutboundMessage) -> SendOutcome:
        """Check the destination, sign and post."""
        if not message.secrets:
            raise ChannelError("webhook subscription no longer exists", permanent=True)
        url, host, extensions = await self._pinned(message.address)
        body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        signature = ", ".join(f"v1={sign(s, timestamp, body)}" for s in message.secrets)
        headers = {
            **host,
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature,
            DELIVERY_HEADER: str(message.delivery_id),
        }
        request = self._http.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions
        )
        try:
            # The body is not read: a receiver's answer never reaches what staff see.
            response = await self._http.send(request, stream=True)
            await response.aclose()
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook {type(exc).__name__}") from exc
        status = response.status_code
        if not 200 <= status < 300:
            raise ChannelError(f"回调返回 HTTP {status}{_phrase(status)}")
        return SendOutcome(DeliveryStatus.DELIVERED)

    async def aclose(self) -> None:
        """Close the webhook client."""
        await self._http.aclose()


def _phrase(status: int) -> str:
    """The standard reason phrase (never the receiver's own)."""
    try:
        return f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        return ""
