"""Notify's use cases. Services never commit: the route's unit of work (or the worker) does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared import jurisdictions
from govshared.auth import Principal, Role
from govshared.db import after_commit
from govshared.events import (
    CloudEvent,
    parse_data,
)
from govshared.idempotency import claim_or_replay, key_owner, request_fingerprint
from notify.channels.base import ChannelError, SendOutcome
from notify.channels.egress import DestinationRefused
from notify.config import Settings
from notify.db import idempotency_keys, inbox_events
from notify.delivery import (
    CONSUMER,
    DIRECT_SOURCE_PREFIX,
    Attempt,
    Composer,
    FanOut,
    ProofOfService,
    Transitions,
    notification_id,
    utcnow,
)
from notify.documents import DocumentLinks, inbox_payload
from notify.errors import (
    DeliveryNotFound,
    InvalidWebhookUrl,
    MessageNotFound,
    NotReplayable,
    TemplateNotFound,
    TemplateRenderFailed,
    WebhookNotFound,
)
from notify.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    InboxMessage,
    RecipientKind,
    RecipientProfile,
    Template,
    WebhookSubscription,
)
from notify.repository import (
    DeliveryRepository,
    EventLogRepository,
    IdempotencyRepository,
    InboxKey,
    InboxRepository,
    ProfileRepository,
    TemplateRepository,
    WebhookRepository,
)
from notify.rules import (
    ENTERPRISE_CHANNELS,
    Audience,
    Plan,
    Readers,
    is_critical,
    plan_event,
    staff_recipient,
    template_context,
    user_recipient,
)
from notify.schemas import (
    EventOutcome,
    EventResult,
    IngestResult,
    NotificationCreate,
    ProfileIn,
    TemplateCreate,
    TemplatePreviewIn,
    TemplatePreviewOut,
    WebhookCreate,
)
from notify.templates import (
    BUILTIN_TEMPLATES,
    STAFF_CHANNEL,
    TemplateSpec,
    check_syntax,
    off_loop,
    render,
)

logger = logging.getLogger("notify.service")


def recipients_of(principal: Principal) -> Readers:
    """The inboxes a caller reads: its USCC; or itself, and its role's in its jurisdiction and
    every one under it (a city's staff see what went to a district's)."""
    if principal.role is Role.ENTERPRISE:
        assert principal.uscc is not None
        return Readers((principal.uscc,))
    keys = (
        staff_recipient(principal.jurisdiction or "*", principal.role),
        user_recipient(principal.subject),
    )
    if principal.jurisdiction is None:
        return Readers(keys)
    return Readers(keys, principal.role.value, principal.jurisdiction)


class InboxSignal:
    """Wakes this process's SSE streams when it commits new messages (other replicas poll)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, _session: AsyncSession | None = None) -> None:
        """Wake every waiting stream."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Wait for a wake-up, at most ``seconds``."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)


@dataclass(frozen=True, slots=True)
class Direct:
    """The result of a direct notification, or the response stored for a retried key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


class NotificationService:
    """Event intake, direct notifications, the inbox, deliveries, preferences and webhooks."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        proof: ProofOfService,
        on_queued: Callable[[AsyncSession], None] | None = None,
        on_inbox: Callable[[AsyncSession], None] | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.proof = proof
        self.on_queued = on_queued
        self.on_inbox = on_inbox
        self.inbox = InboxRepository(session)
        self.deliveries = DeliveryRepository(session)
        self.links = DocumentLinks.from_settings(settings)

    def _after_commit(self, created: Sequence[dict[str, Any]]) -> None:
        if self.on_queued is not None and any(
            r["status"] == DeliveryStatus.QUEUED for r in created
        ):
            after_commit(self.session, self.on_queued)
        if self.on_inbox is not None and any(r["channel"] == Channel.INBOX for r in created):
            after_commit(self.session, self.on_inbox)

    # --- events ---------------------------------------------------------------------------

    async def ingest(self, events: Sequence[CloudEvent]) -> IngestResult:
        """Consume a batch: each new event's notices in this one transaction, redeliveries ignored."""
        now = utcnow()
        results: list[EventResult] = []
        planned: list[tuple[CloudEvent, Plan, EventResult]] = []
        fresh = await EventLogRepository(self.session).record_events_once(
            inbox_events, consumer=CONSUMER, events=[(e.id, e.type) for e in events], at=now
        )
        for event in events:
            if event.id not in fresh:
                results.append(EventResult(id=event.id, outcome=EventOutcome.DUPLICATE))
                continue
            fresh.discard(event.id)  # the same id again in this batch is a duplicate
            try:
                data = parse_data(event)
            except KeyError:
                results.append(EventResult(id=event.id, outcome=EventOutcome.IGNORED))
                continue
            except ValidationError as exc:
                # Retrying cannot fix a producer's bad data: record it, log it, move on.
                error = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )[:500]
                logger.warning(
                    "event data invalid",
                    extra={"event_id": event.id, "event_type": event.type, "error": error},
                )
                results.append(EventResult(id=event.id, outcome=EventOutcome.INVALID, error=error))
                continue
            result = EventResult(id=event.id, outcome=EventOutcome.ACCEPTED)
            results.append(result)
            plan = plan_event(event, data, self.settings.named_recipients, self.links)
            planned.append((event, plan, result))
        if planned:
            fan_out = FanOut(self.session, settings=self.settings, proof=self.proof)
            created = await fan_out.run([(e, p) for e, p, _ in planned], now=now)
            per_event: dict[str, int] = {}
            for row in created:
                per_event[row["event_id"]] = per_event.get(row["event_id"], 0) + 1
            for _, _, result in planned:
                result.notices = per_event.get(result.id, 0)
            self._after_commit(created)
        return IngestResult(
            received=len(events),
            accepted=sum(r.outcome is EventOutcome.ACCEPTED for r in results),
            duplicates=sum(r.outcome is EventOutcome.DUPLICATE for r in results),
            results=results,
        )

    async def notify_direct(
        self, *, principal: Principal, body: NotificationCreate, idempotency_key: str | None
    ) -> Direct:
        """A notice from another caller, rendered with an event type's templates."""
        now = utcnow()
        event = CloudEvent(
            id=f"direct-{uuid.uuid4()}",
            source=f"{DIRECT_SOURCE_PREFIX}{principal.subject}"[:200],
            type=body.event_type,
            subject=body.subject,
            time=now,
            data=body.data,
        )
        recipient = str(body.recipient_uscc)
        response: dict[str, Any] = {
            "event_id": event.id,
            "notification_id": str(notification_id(event.id, recipient)),
            "recipient": recipient,
            "deliveries": [],
        }
        owner = key_owner(principal, "POST /api/v1/notifications")
        if idempotency_key is not None:
            stored = await claim_or_replay(
                self.session,
                idempotency_keys,
                owner=owner,
                key=idempotency_key,
                request_hash=request_fingerprint(
                    "POST", "/api/v1/notifications", body.model_dump(mode="json")
                ),
                status_code=202,
                body=response,
            )
            if stored is not None:
                return Direct(stored.status_code, stored.body, replayed=True)
        composer = Composer(await TemplateRepository(self.session).latest())
        if composer.spec(body.event_type, Channel.INBOX) is None:
            raise TemplateNotFound(f"事件类型 {body.event_type} 没有站内信模板")
        plan = Plan(
            critical=is_critical(body.event_type) if body.critical is None else body.critical,
            jurisdiction=None,
            audiences=[
                Audience(
                    RecipientKind.ENTERPRISE,
                    recipient,
                    tuple(body.channels) if body.channels else ENTERPRISE_CHANNELS,
                )
            ],
            context=template_context(event, body.data, self.links),
        )
        fan_out = FanOut(self.session, settings=self.settings, proof=self.proof)
        created = await fan_out.run([(event, plan)], now=now, strict=True)
        response["deliveries"] = [
            {"id": str(r["id"]), "channel": r["channel"], "status": r["status"]} for r in created
        ]
        if idempotency_key is not None:
            await IdempotencyRepository(self.session).store_response(
                owner=owner, key=idempotency_key, body=json.dumps(response, ensure_ascii=False)
            )
        self._after_commit(created)
        return Direct(202, response, replayed=False)

    # --- inbox ----------------------------------------------------------------------------

    async def list_inbox(
        self, *, principal: Principal, limit: int, after: InboxKey | None
    ) -> list[InboxMessage]:
        """The caller's messages, unread first, then newest."""
        return await self.inbox.list_for(recipients_of(principal), limit=limit, after=after)

    async def get_message(self, *, principal: Principal, message_id: uuid.UUID) -> InboxMessage:
        """One of the caller's messages (404 for anyone else's, never its content)."""
        message = await self.inbox.get_for(message_id, recipients_of(principal))
        if message is None:
            raise MessageNotFound()
        return message

    async def mark_read(self, *, principal: Principal, message_id: uuid.UUID) -> InboxMessage:
        """Mark one of the caller's messages read."""
        message = await self.get_message(principal=principal, message_id=message_id)
        await self.inbox.mark_read(message, utcnow())
        return message

    async def unread_count(self, *, principal: Principal) -> int:
        """How many of the caller's messages are unread."""
        return await self.inbox.unread_count(recipients_of(principal))

    # --- deliveries -----------------------------------------------------------------------

    def _visible(self, principal: Principal, delivery: Delivery | None) -> Delivery:
        if delivery is None or (
            principal.role is not Role.ADMIN
            and not jurisdictions.covers(principal.jurisdiction, delivery.jurisdiction)
        ):
            raise DeliveryNotFound()
        return delivery

    async def list_deliveries(
        self,
        *,
        principal: Principal,
        status: DeliveryStatus,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Delivery]:
        """Deliveries in a state (the dead-letter list), for the staff of their jurisdiction."""
        jurisdiction = None if principal.role is Role.ADMIN else principal.jurisdiction
        return await self.deliveries.list_by_status(
            status, jurisdiction=jurisdiction, limit=limit, after=after
        )

    async def get_delivery(
        self, *, principal: Principal, delivery_id: uuid.UUID
    ) -> tuple[Delivery, list[Any]]:
        """One delivery with its status history."""
        delivery = self._visible(principal, await self.deliveries.get(delivery_id))
        return delivery, await self.deliveries.history(delivery_id)

    async def replay(
        self, *, principal: Principal, delivery_id: uuid.UUID
    ) -> tuple[Delivery, list[Any]]:
        """Queue a dead delivery again (re-rendered if its template had failed)."""
        delivery = self._visible(principal, await self.deliveries.get_for_update(delivery_id))
        if delivery.status != DeliveryStatus.DEAD:
            raise NotReplayable(f"投递当前状态为 {delivery.status}")
        now = utcnow()
        history: list[dict[str, Any]] = []
        if delivery.body is None:
            composer = Composer(
                await TemplateRepository(self.session).latest(), self.settings.template_limits()
            )
            slot = (
                STAFF_CHANNEL
                if delivery.recipient_kind == RecipientKind.STAFF
                else delivery.channel
            )
            rendered = await composer.render(delivery.event_type, slot, dict(delivery.context))
            if rendered is None:
                raise TemplateNotFound()
            delivery.title = (rendered.title or "")[:200]
            delivery.body = rendered.body
            delivery.template_version = rendered.version
            if delivery.channel == Channel.SMS:
                delivery.payload = {
                    "sms_template_id": rendered.sms_template_id,
                    "sms_params": rendered.sms_params,
                }
        detail = f"由 {principal.subject} 重放"
        delivery.attempts = 0
        delivery.last_error = None
        delivery.claimed_until = None
        delivery.next_attempt_at = now
        delivery.updated_at = now
        if delivery.channel == Channel.INBOX:
            # An inbox delivery is the message itself: replaying it delivers it now.
            delivery.status = DeliveryStatus.DELIVERED
            delivery.sent_at = delivery.delivered_at = now
            await self.inbox.insert_many(
                [
                    {
                        "id": delivery.id,
                        "recipient_kind": delivery.recipient_kind,
                        "recipient": delivery.recipient,
                        "event_id": delivery.event_id,
                        "event_type": delivery.event_type,
                        "subject": delivery.subject,
                        "title": delivery.title or "通知",
                        "body": delivery.body or "",
                        "critical": delivery.critical,
                        "payload": inbox_payload(delivery.context),
                        "is_read": False,
                        "created_at": now,
                        "read_at": None,
                    }
                ]
            )
            if self.on_inbox is not None:
                after_commit(self.session, self.on_inbox)
        else:
            delivery.status = DeliveryStatus.QUEUED
            if self.on_queued is not None:
                after_commit(self.session, self.on_queued)
        history.append(
            {"delivery_id": delivery.id, "status": delivery.status, "detail": detail, "at": now}
        )
        await self.session.flush()
        await self.deliveries.append_history(history)
        if (
            delivery.status == DeliveryStatus.DELIVERED
            and delivery.critical
            and self.proof.eligible(
                cause_event_type=delivery.event_type, cause_source=delivery.event_source
            )
        ):
            await self.proof.report(self.session, delivery, delivered_at=now)
        return delivery, await self.deliveries.history(delivery.id)

    async def sms_receipt(
        self, *, message_id: str, delivered: bool, error_code: str | None
    ) -> Delivery:
        """Apply a provider's delivery receipt (idempotent: a repeated receipt changes nothing)."""
        delivery = await self.deliveries.by_provider_id(message_id)
        if delivery is None:
            raise DeliveryNotFound("未找到该短信的投递记录")
        if delivery.status not in (DeliveryStatus.SENT, DeliveryStatus.SENDING):
            return delivery
        now = utcnow()
        transitions = Transitions(self.session, settings=self.settings, proof=self.proof)
        if delivered:
            attempt = Attempt(
                delivery, SendOutcome(DeliveryStatus.DELIVERED), None, delivery.attempts
            )
        else:
            error = ChannelError(f"短信回执：发送失败（{error_code or 'unknown'}）")
            attempt = Attempt(delivery, None, error, delivery.attempts)
        await transitions.apply([attempt], now=now)
        if self.on_queued is not None and not delivered:
            after_commit(self.session, self.on_queued)
        await self.session.refresh(delivery)
        return delivery

    # --- preferences ----------------------------------------------------------------------

    async def get_profile(self, *, recipient: str) -> RecipientProfile:
        """The recipient's profile (defaults when none was saved)."""
        profile = await ProfileRepository(self.session).get(recipient)
        if profile is None:
            return RecipientProfile(
                recipient=recipient,
                email=None,
                mobile=None,
                time_zone=self.settings.default_time_zone,
                quiet_start=None,
                quiet_end=None,
                disabled_channels=[],
            )
        return profile

    async def save_profile(self, *, recipient: str, body: ProfileIn) -> RecipientProfile:
        """Replace the recipient's profile."""
        profile = RecipientProfile(
            recipient=recipient,
            email=body.email,
            mobile=body.mobile,
            time_zone=body.time_zone,
            quiet_start=body.quiet_start,
            quiet_end=body.quiet_end,
            disabled_channels=[c.value for c in body.disabled_channels],
            updated_at=utcnow(),
        )
        await ProfileRepository(self.session).save(profile)
        return profile

    # --- webhooks -------------------------------------------------------------------------

    async def _check_url(self, url: str) -> str:
        """A webhook URL notify may post to: http(s), no credentials, a public destination.

        The host is checked as written (every spelling of an internal address is refused) and
        as resolved now; a name that does not resolve yet is accepted, because every delivery
        resolves and checks it again before it connects.
        """
        parts = urlsplit(url)
        allowed = {"https", "http"} if self.settings.webhook_allow_http else {"https"}
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
        try:
            await policy.resolve(hostname, port or (443 if parts.scheme == "https" else 80))
        except DestinationRefused as exc:
            # Notices must not be steered into the data centre's own network (SSRF).
            raise InvalidWebhookUrl(exc.reason, reason="destination_not_public") from exc
        except LookupError:
            pass
        return url

    async def create_webhook(self, *, owner: str, body: WebhookCreate) -> WebhookSubscription:
        """Subscribe the owner's system; the secret is returned once."""
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

    # --- templates ------------------------------------------------------------------------

    async def list_templates(self, *, event_type: str | None) -> list[dict[str, Any]]:
        """Built-in and published versions."""
        builtin = [
            {
                "event_type": spec.event_type,
                "channel": slot,
                "version": spec.version,
                "title": spec.title,
                "body": spec.body,
                "sms_template_id": spec.sms_template_id,
                "builtin": True,
            }
            for (etype, slot), spec in sorted(BUILTIN_TEMPLATES.items())
            if event_type is None or etype == event_type
        ]
        published = [
            {
                "event_type": t.event_type,
                "channel": t.channel,
                "version": t.version,
                "title": t.title,
                "body": t.body,
                "sms_template_id": t.sms_template_id,
                "builtin": False,
                "created_at": t.created_at,
            }
            for t in await TemplateRepository(self.session).versions(event_type)
        ]
        return builtin + published

    async def publish_template(self, *, principal: Principal, body: TemplateCreate) -> Template:
        """Publish the next version of a template (it must compile; SMS needs an approved id)."""
        # Compiling 20 000 characters of someone's template is work: not on the event loop.
        await off_loop(check_syntax, body.body)
        if body.title:
            await off_loop(check_syntax, body.title)
        if body.channel == Channel.SMS and not body.sms_template_id:
            raise TemplateRenderFailed("短信模板须填写服务商审核通过的模板编号 sms_template_id")
        repo = TemplateRepository(self.session)
        current = await repo.max_version(body.event_type, body.channel)
        builtin = BUILTIN_TEMPLATES.get((body.event_type, body.channel))
        version = max(current or 0, builtin.version if builtin else 0) + 1
        template = Template(
            event_type=body.event_type,
            channel=body.channel,
            version=version,
            title=body.title,
            body=body.body,
            sms_template_id=body.sms_template_id,
            created_by=principal.subject,
            created_at=utcnow(),
        )
        await repo.add(template)
        return template

    async def preview(self, *, body: TemplatePreviewIn) -> TemplatePreviewOut:
        """Render the template in force, or a draft, with sample data."""
        limits = self.settings.template_limits()
        composer = Composer(await TemplateRepository(self.session).latest(), limits)
        spec = composer.spec(body.event_type, body.channel)
        if body.body is not None:
            channel = Channel.INBOX if body.channel == STAFF_CHANNEL else Channel(body.channel)
            spec = TemplateSpec(
                body.event_type,
                channel,
                0,
                body.title,
                body.body,
                spec.sms_template_id if spec else "SMS_DRAFT",
            )
        if spec is None:
            raise TemplateNotFound(f"{body.event_type} 没有 {body.channel} 模板")
        # A draft is anyone's text: it renders in a worker thread, within the render limits
        # (which bound its time too: the thread cannot be stopped from outside, so it stops
        # itself when its budget is spent).
        rendered = await off_loop(render, spec, body.data, limits)
        return TemplatePreviewOut(
            version=spec.version or None,
            title=rendered.title,
            body=rendered.body,
            sms_template_id=rendered.sms_template_id,
            sms_params=rendered.sms_params,
        )


def new_secret() -> str:
    """A webhook signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)


async def inbox_updates(
    sessionmaker: async_sessionmaker[AsyncSession],
    signal: InboxSignal,
    *,
    recipients: Readers,
    since: tuple[datetime, uuid.UUID] | None,
    poll_seconds: float,
    max_seconds: float,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[InboxMessage]:
    """New messages of the recipients, as they commit, until ``max_seconds`` have passed.

    Each poll reads a few seconds back from the newest message seen, because a transaction that
    began earlier can commit a message stamped before one already sent; ids seen are skipped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    cursor = since[0] if since is not None else utcnow()
    lookback = timedelta(seconds=10)
    seen: dict[uuid.UUID, datetime] = {}
    while True:
        async with sessionmaker() as session:
            rows = await InboxRepository(session).created_since(
                recipients, cursor - lookback, limit=200
            )
        for message in rows:
            if message.id in seen or (
                since is not None and (message.created_at, message.id) <= since
            ):
                continue
            seen[message.id] = message.created_at
            cursor = max(cursor, message.created_at)
            yield message
        horizon = cursor - lookback
        for ident in [i for i, at in seen.items() if at < horizon]:
            del seen[ident]
        remaining = deadline - loop.time()
        if remaining <= 0 or await is_disconnected():
            return
        await signal.wait(min(poll_seconds, remaining))
