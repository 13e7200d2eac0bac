"""SMS through a provider gateway with pre-approved templates (模板短信), as Chinese providers require.

Providers differ in wire format; each is an ``SmsProvider`` adapter. ``HttpSmsProvider`` speaks the
suite's generic gateway protocol (also what the test stand-in serves):
``POST {base}/v1/sms/send`` with ``{phone, sign_name, template_id, params, out_id}`` answers
``{"message_id": ...}``; the provider later posts a receipt to ``/api/v1/receipts/sms``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Protocol

import httpx

from notify.channels.base import ChannelError, OutboundMessage, SendOutcome
from notify.models import PROVIDER_ID_CHARS, Channel, DeliveryStatus

logger = logging.getLogger("notify.sms")


class SmsProvider(Protocol):
    """A provider adapter: send one templated SMS, return the provider's message id."""

    async def send_template(
        self, *, phone: str, template_id: str, params: dict[str, str], out_id: str
    ) -> str:
        """Raise ``ChannelError`` on failure."""
        ...


class HttpSmsProvider:
    """The generic HTTP gateway adapter."""

    def __init__(
        self, *, base_url: str, api_key: str | None, sign_name: str, http: httpx.AsyncClient
    ) -> None:
        self._url = base_url.rstrip("/") + "/v1/sms/send"
        self._api_key = api_key
        self._sign_name = sign_name
        self._http = http

    async def send_template(
        self, *, phone: str, template_id: str, params: dict[str, str], out_id: str
    ) -> str:
        """Post to the gateway; 4xx other than 408/429 is permanent (bad number, bad template)."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = {
            "phone": phone,
            "sign_name": self._sign_name,
            "template_id": template_id,
            "params": params,
            "out_id": out_id,
        }
        try:
            response = await self._http.post(self._url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"SMS gateway {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
            raise ChannelError(
                f"SMS gateway HTTP {response.status_code}: {response.text[:300]}",
                permanent=permanent,
            )
        try:
            return str(response.json()["message_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelError(f"SMS gateway answered without message_id: {exc}") from exc


class SmsSender:
    """The SMS channel: a templated message through a provider; ``sent`` until the receipt."""

    channel = Channel.SMS

    def __init__(self, provider: SmsProvider) -> None:
        self._provider = provider

    async def send(self, message: OutboundMessage) -> SendOutcome:
        """Send with the template id and parameters rendered at fan-out."""
        template_id = message.payload.get("sms_template_id")
        params = message.payload.get("sms_params")
        if not template_id or not isinstance(params, dict):
            raise ChannelError("no approved SMS template for this notice", permanent=True)
        message_id = await self._provider.send_template(
            phone=message.address,
            template_id=str(template_id),
            params={str(k): str(v) for k, v in params.items()},
            out_id=str(message.delivery_id),
        )
        if not 0 < len(message_id) <= PROVIDER_ID_CHARS:
            # Sent all the same: an id the delivery cannot keep would fail the recording of the
            # whole batch of results, and every notice of it would go out again after the lease.
            # Its receipt cannot be matched (receipts name at most that many characters either).
            logger.warning("SMS provider message id not kept", extra={"length": len(message_id)})
            return SendOutcome(DeliveryStatus.SENT)
        return SendOutcome(DeliveryStatus.SENT, provider_message_id=message_id)

    async def aclose(self) -> None:
        """The HTTP client belongs to the app."""


def receipt_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 (hex) over ``timestamp.body``, as the provider signs receipts."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
