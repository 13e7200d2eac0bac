"""Enterprises' webhook subscriptions: a public http(s) URL, the event types, and a signing
secret that rotates with a grace period (the deliveries themselves are in ``channels.webhook``)."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from notify.channels.egress import DestinationRefused
from notify.config import Settings
from notify.delivery import utcnow
from notify.errors import InvalidWebhookUrl, WebhookLimitReached, WebhookNotFound
from notify.models import WebhookSubscription
from notify.repository import WebhookRepository
from notify.schemas import WebhookCreate

# The subscriptions one enterprise may have: each is one more delivery (a row, an attempt, its
# retries) of every notice it receives, and thousands would make each of its notices thousands.
WEBHOOKS_PER_ENTERPRISE = 20


class WebhookService:
    """An enterprise's subscriptions, bound to one transaction's session."""

    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def _check_url(self, url: str) -> str:
        """A webhook URL notify may post to: http(s), no credentials, an allowed port
        (``NOTIFY_WEBHOOK_PORTS``), a public destination.

        The host is checked as written (every spelling of an internal address is refused) and
        as resolved now; a name that does not resolve yet is accepted, because every delivery
        resolves and checks it again before it connects.
        """
        allowed = {"https", "http"} if self.settings.webhook_allow_http else {"https"}
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            # An unclosed or invalid IPv6 literal ("https://[abc/hook").
            raise InvalidWebhookUrl("回调地址格式无效") from exc
        try:
            hostname, port = parts.hostname, parts.port
        except ValueError as exc:
            raise InvalidWebhookUrl("回调地址的端口无效") from exc
        if parts.scheme not in allowed or not hostname:
            raise InvalidWebhookUrl(
                "回调地址须为 https 地址" if "http" not in allowed else "回调地址须为 http(s) 地址"
            )
        if parts.username or parts.password:
            raise InvalidWebhookUrl("回调地址不能包含用户名或密码")
        policy = self.settings.egress_policy()
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            # Only the ports the worker's network lets out: another could never be delivered.
            policy.check_port(port)
        except DestinationRefused as exc:
            raise InvalidWebhookUrl(exc.reason, reason="port_not_allowed") from exc
        try:
            await policy.resolve(hostname, port)
        except DestinationRefused as exc:
            # Notices must not be steered into the data centre's own network (SSRF).
            raise InvalidWebhookUrl(exc.reason, reason="destination_not_public") from exc
        except LookupError:
            pass
        return url

    async def create_webhook(self, *, owner: str, body: WebhookCreate) -> WebhookSubscription:
        """Subscribe the owner's system; the secret is returned once."""
        if await WebhookRepository(self.session).count_for(owner) >= WEBHOOKS_PER_ENTERPRISE:
            raise WebhookLimitReached(
                f"每个企业最多 {WEBHOOKS_PER_ENTERPRISE} 个回调订阅，请先删除不用的订阅"
            )
        now = utcnow()
        subscription = WebhookSubscription(
            id=uuid.uuid4(),
            owner=owner,
            url=await self._check_url(body.url),
            description=body.description,
            event_types=body.event_types,
            secret=new_secret(),
            previous_secret=None,
            previous_secret_expires_at=None,
            active=True,
            created_at=now,
            updated_at=now,
        )
        await WebhookRepository(self.session).add(subscription)
        return subscription

    async def list_webhooks(self, *, owner: str) -> list[WebhookSubscription]:
        """The owner's subscriptions."""
        return await WebhookRepository(self.session).list_for(owner)

    async def get_webhook(self, *, owner: str, webhook_id: uuid.UUID) -> WebhookSubscription:
        """One of the owner's subscriptions (404 for anyone else's)."""
        subscription = await WebhookRepository(self.session).get_for(webhook_id, owner)
        if subscription is None:
            raise WebhookNotFound()
        return subscription

    async def delete_webhook(self, *, owner: str, webhook_id: uuid.UUID) -> None:
        """Remove one of the owner's subscriptions."""
        subscription = await self.get_webhook(owner=owner, webhook_id=webhook_id)
        await WebhookRepository(self.session).delete(subscription)

    async def rotate_secret(
        self, *, owner: str, webhook_id: uuid.UUID, grace_seconds: int
    ) -> WebhookSubscription:
        """A new secret; the old one still signs (beside the new) for ``grace_seconds``."""
        subscription = await self.get_webhook(owner=owner, webhook_id=webhook_id)
        now = utcnow()
        subscription.previous_secret = subscription.secret if grace_seconds > 0 else None
        subscription.previous_secret_expires_at = (
            now + timedelta(seconds=grace_seconds) if grace_seconds > 0 else None
        )
        subscription.secret = new_secret()
        subscription.updated_at = now
        await self.session.flush()
        return subscription


def new_secret() -> str:
    """A webhook signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)
