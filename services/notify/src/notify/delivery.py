"""Delivery machinery: fan-out of events into deliveries, attempt results, proof of service.

Shared by the request paths (event intake, direct notifications, replay, receipts) and the delivery
worker. Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.backoff import backoff_seconds
from govshared.chinatime import CHINA_ZONE_NAME
from govshared.db import after_commit
from govshared.events import (
    CloudEvent,
    EventType,
    NotificationDeliveredData,
    make_event,
)
from govshared.outbox import OutboxWriter
from notify.channels.base import ChannelError, SendOutcome
from notify.config import Settings
from notify.contacts import mask_contacts
from notify.db import outbox_events
from notify.documents import inbox_payload
from notify.errors import (
    TemplateRenderFailed,
)
from notify.models import (
    RECIPIENT_CHARS,
    Channel,
    DeliveryStatus,
    RecipientKind,
)
from notify.repository import (
    DeliveryRepository,
    EventLogRepository,
    InboxRepository,
    ProfileRepository,
    TemplateRepository,
    WebhookRepository,
)
from notify.rules import (
    Audience,
    Plan,
    webhook_matches,
)
from notify.templates import (
    BUILTIN_TEMPLATES,
    DEFAULT_LIMITS,
    STAFF_CHANNEL,
    Rendered,
    RenderLimits,
    TemplateSpec,
    off_loop,
    render,
)
from notify.webhook_body import webhook_envelope, webhook_payload

SOURCE = "/services/notify"
CONSUMER = "notify"
DIRECT_SOURCE_PREFIX = "/callers/"
_NOTIFICATION_NAMESPACE = uuid.UUID("6b1c52a4-52f4-4f7e-9a47-2a8f0f1d6c11")
logger = logging.getLogger("notify.delivery")


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def notification_id(event_id: str, recipient: str) -> uuid.UUID:
    """The id of the notice an event makes for one recipient (the same on every channel)."""
    return uuid.uuid5(_NOTIFICATION_NAMESPACE, f"{event_id}|{recipient}")


class ProofOfService:
    """Reports the delivery of a critical notice back to the service whose event caused it."""

    def __init__(self, writers: dict[str, OutboxWriter]) -> None:
        """``writers`` maps a cause event type prefix (``cn.gov.approval.``) to its writer."""
        self._writers = writers
        self.wake: Callable[[], None] | None = None

    def writers(self) -> list[OutboxWriter]:
        """The outbox writers (to hook the relay's wake-up on)."""
        return list(self._writers.values())

    def eligible(self, *, cause_event_type: str, cause_source: str) -> bool:
        """Only events from the suite's services are reported back, not direct notifications."""
        return not cause_source.startswith(DIRECT_SOURCE_PREFIX) and any(
            cause_event_type.startswith(prefix) for prefix in self._writers
        )

    def _on_commit(self, _session: AsyncSession) -> None:
        if self.wake is not None:
            self.wake()

    async def report(self, session: AsyncSession, row: Any, *, delivered_at: datetime) -> None:
        """Report one delivery (see ``report_many``)."""
        await self.report_many(session, [row], delivered_at=delivered_at)

    async def report_many(
        self, session: AsyncSession, rows: Sequence[Any], *, delivered_at: datetime
    ) -> int:
        """Write ``cn.gov.notify.notification.delivered.v1`` per delivery, in the caller's transaction."""
        by_writer: dict[str, list[CloudEvent]] = {}
        for row in rows:
            prefix = next((p for p in self._writers if row.event_type.startswith(p)), None)
            if prefix is None:
                continue
            data = NotificationDeliveredData(
                notification_id=row.notification_id,
                cause_event_id=row.event_id,
                cause_event_type=row.event_type,
                subject=row.subject,
                channel=row.channel,
                recipient=row.recipient,
                delivered_at=delivered_at,
            )
            by_writer.setdefault(prefix, []).append(
                make_event(
                    type=EventType.NOTIFICATION_DELIVERED,
                    source=SOURCE,
                    subject=row.subject,
                    data=data,
                )
            )
        written = 0
        log = EventLogRepository(session)
        for prefix, events in by_writer.items():
            written += await log.add_to_outbox(
                outbox_events, self._writers[prefix], events, at=delivered_at
            )
        if written:
            after_commit(session, self._on_commit)
        return written


class Composer:
    """Finds the template in force for an event type and channel and renders it."""

    def __init__(
        self, published: dict[tuple[str, str], Any], limits: RenderLimits = DEFAULT_LIMITS
    ) -> None:
        self._published = published
        self.limits = limits

    def spec(self, event_type: str, slot: str) -> TemplateSpec | None:
        """The newest published version, else the built-in one; email and webhook fall back to inbox."""
        for candidate in (slot, Channel.INBOX.value) if slot in ("email", "webhook") else (slot,):
            row = self._published.get((event_type, candidate))
            if row is not None:
                channel = Channel.INBOX if candidate == STAFF_CHANNEL else Channel(candidate)
                return TemplateSpec(
                    event_type, channel, row.version, row.title, row.body, row.sms_template_id
                )
            builtin = BUILTIN_TEMPLATES.get((event_type, candidate))
            if builtin is not None:
                return builtin
        return None

    async def render(self, event_type: str, slot: str, context: dict[str, Any]) -> Rendered | None:
        """Render, or None when the event type has no template for the slot.

        A published (admin-written) template renders in a worker thread, so that even a render
        that spends its whole budget never holds the event loop; the built-in texts are ours
        and render inline, within the same limits.
        """
        spec = self.spec(event_type, slot)
        if spec is None:
            return None
        if id(spec) in _BUILTIN_IDS:
            return render(spec, context, self.limits)
        return await off_loop(render, spec, context, self.limits)


_BUILTIN_IDS = frozenset(id(spec) for spec in BUILTIN_TEMPLATES.values())


@dataclass
class _Batch:
    """Rows of one fan-out, inserted together (executemany) at the end."""

    now: datetime
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    proofs: list[dict[str, Any]] = field(default_factory=list)


def _envelope_of(row: Any) -> CloudEvent:
    """Rebuild the cause event's envelope from a delivery (fallbacks and re-renders)."""
    return CloudEvent(
        id=row.event_id,
        source=row.event_source,
        type=row.event_type,
        subject=row.subject,
        time=row.created_at,
        data=dict(row.context),
    )


class FanOut:
    """Turns planned events into deliveries: inbox messages at once, the rest queued."""

    def __init__(self, session: AsyncSession, *, settings: Settings, proof: ProofOfService) -> None:
        self.session = session
        self.settings = settings
        self.proof = proof
        self.deliveries = DeliveryRepository(session)

    async def run(
        self,
        items: Sequence[tuple[CloudEvent, Plan]],
        *,
        now: datetime,
        strict: bool = False,
        fallback_of: uuid.UUID | None = None,
        inbox_later: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Create the deliveries of the events; the delivery rows actually created.

        The inbox messages are inserted last (``InboxRepository.insert_many`` numbers them and
        holds the stream counter until commit); with ``inbox_later`` they are added to that list
        instead, for a caller with writes still to do to insert them once as its own last write.

        ``strict`` raises a render failure (direct calls answer 422); otherwise the delivery is
        recorded dead with the error, for staff to see and replay once the template is fixed.
        A fallback inserts only what does not exist yet for (event, recipient, channel).
        """
        enterprises = {
            a.recipient
            for _, plan in items
            for a in plan.audiences
            if a.kind is RecipientKind.ENTERPRISE
        }
        profiles = await ProfileRepository(self.session).get_many(enterprises)
        hooks = await WebhookRepository(self.session).active_for_owners(enterprises)
        composer = Composer(
            await TemplateRepository(self.session).latest(), self.settings.template_limits()
        )
        batch = _Batch(now)
        for event, plan in items:
            renders: dict[str, tuple[Rendered | None, str | None]] = {}
            for audience in plan.audiences:
                if len(audience.recipient) > RECIPIENT_CHARS:
                    # Longer than any token's claim makes a reader's key: nobody could read it,
                    # and on PostgreSQL it failed the whole batch (sent again and again).
                    logger.warning(
                        "recipient passed over: no reader has so long a key",
                        extra={"event_id": event.id, "event_type": event.type},
                    )
                    continue
                profile = profiles.get(audience.recipient)
                for channel in audience.channels:
                    disabled = profile.disabled_channels if profile is not None else []
                    if not plan.critical and channel in disabled:
                        continue
                    targets = self._targets(event, audience, channel, profile, hooks)
                    if not targets:
                        continue
                    slot = audience.template_slot or channel.value
                    if slot not in renders:
                        renders[slot] = await self._render(composer, event, plan, slot, strict)
                    rendered, error = renders[slot]
                    for target, address in targets:
                        self._add(
                            batch,
                            event=event,
                            plan=plan,
                            audience=audience,
                            channel=channel,
                            target=target,
                            address=address,
                            rendered=rendered,
                            error=error,
                            fallback_of=fallback_of,
                        )
        if fallback_of is not None:
            created = [row for row in batch.deliveries if await self.deliveries.insert_if_new(row)]
            ids = {row["id"] for row in created}
            batch.messages = [m for m in batch.messages if m["id"] in ids]
            batch.history = [h for h in batch.history if h["delivery_id"] in ids]
            batch.proofs = [p for p in batch.proofs if p["id"] in ids]
        else:
            created = batch.deliveries
            await self.deliveries.insert_many(created)
        await self.deliveries.append_history(batch.history)
        await self.proof.report_many(
            self.session, [_RowView(row) for row in batch.proofs], delivered_at=now
        )
        if inbox_later is not None:
            inbox_later.extend(batch.messages)
        else:
            # Last: numbering the messages locks the stream counter until this transaction commits.
            await InboxRepository(self.session).insert_many(batch.messages)
        return created

    @staticmethod
    async def _render(
        composer: Composer, event: CloudEvent, plan: Plan, slot: str, strict: bool
    ) -> tuple[Rendered | None, str | None]:
        """An event's text for a slot, once for all its recipients; a failure is its error.

        Whatever fails here fails this slot's deliveries only: the event is still accepted (an
        intake that answered 5xx would have the sender's relay resend it, and every event after
        it, until the template is fixed), and a direct notice is answered with a 422.
        """
        try:
            return await composer.render(event.type, slot, plan.context), None
        except TemplateRenderFailed as exc:
            if strict:
                raise
            error = mask_contacts(exc.detail or exc.title)
            logger.warning(
                "template render failed",
                extra={"event_type": event.type, "channel": slot, "error": error},
            )
            return None, error
        except Exception as exc:
            error = mask_contacts(f"模板渲染失败：{type(exc).__name__}: {exc}")
            logger.exception(
                "template render failed unexpectedly",
                extra={"event_type": event.type, "channel": slot, "error": error},
            )
            if strict:
                raise TemplateRenderFailed(error) from exc
            return None, error

    def _targets(
        self,
        event: CloudEvent,
        audience: Audience,
        channel: Channel,
        profile: Any,
        hooks: dict[str, list[Any]],
    ) -> list[tuple[str, str | None]]:
        if channel is Channel.INBOX:
            return [("", None)]
        if channel is Channel.EMAIL:
            return [("", profile.email)] if profile is not None and profile.email else []
        if channel is Channel.SMS:
            ok = profile is not None and profile.mobile and self.settings.sms_gateway_url
            return [("", profile.mobile)] if ok else []
        return [
            (str(hook.id), hook.url)
            for hook in hooks.get(audience.recipient, [])
            if webhook_matches(list(hook.event_types or []), event.type)
        ]

    def _add(
        self,
        batch: _Batch,
        *,
        event: CloudEvent,
        plan: Plan,
        audience: Audience,
        channel: Channel,
        target: str,
        address: str | None,
        rendered: Rendered | None,
        error: str | None,
        fallback_of: uuid.UUID | None,
    ) -> None:
        now = batch.now
        if rendered is None and error is None:
            return  # no template for this channel (e.g. no approved SMS template): not sent there
        delivery_id = uuid.uuid4()
        notice_id = notification_id(event.id, audience.recipient)
        payload: dict[str, Any] | None = None
        if rendered is not None and channel is Channel.SMS:
            payload = {
                "sms_template_id": rendered.sms_template_id,
                "sms_params": rendered.sms_params,
            }
        elif channel is Channel.WEBHOOK:
            # Kept even when the text failed to render: the cause event is not stored anywhere
            # else, and a replay must send what fan-out would have.
            payload = webhook_envelope(
                delivery_id=delivery_id,
                notice_id=notice_id,
                critical=plan.critical,
                event=event,
                context=plan.context,
            )
            if rendered is not None:
                payload = webhook_payload(payload, rendered)
        if error is not None:
            status = DeliveryStatus.DEAD
        elif channel is Channel.INBOX:
            status = DeliveryStatus.DELIVERED
        else:
            status = DeliveryStatus.QUEUED
        row: dict[str, Any] = {
            "id": delivery_id,
            "notification_id": notice_id,
            "event_id": event.id,
            "event_type": event.type,
            "event_source": event.source,
            "subject": event.subject,
            "recipient_kind": audience.kind.value,
            "recipient": audience.recipient,
            "jurisdiction": plan.jurisdiction,
            "channel": channel.value,
            "target": target,
            "address": address,
            "critical": plan.critical,
            "template_version": rendered.version if rendered else None,
            "title": (rendered.title or "")[:200] if rendered else None,
            "body": rendered.body if rendered else None,
            "context": plan.context,
            "payload": payload,
            "status": status.value,
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_until": None,
            "last_error": error,
            "provider_message_id": None,
            "fallback_of": fallback_of,
            "created_at": now,
            "updated_at": now,
            "sent_at": now if status is DeliveryStatus.DELIVERED else None,
            "delivered_at": now if status is DeliveryStatus.DELIVERED else None,
        }
        batch.deliveries.append(row)
        detail = "渲染失败：" + error if error else ("降级自短信" if fallback_of else None)
        batch.history.append(
            {"delivery_id": delivery_id, "status": status.value, "detail": detail, "at": now}
        )
        if status is DeliveryStatus.DELIVERED and rendered is not None:
            batch.messages.append(
                {
                    "id": delivery_id,
                    "recipient_kind": audience.kind.value,
                    "recipient": audience.recipient,
                    "event_id": event.id,
                    "event_type": event.type,
                    "subject": event.subject,
                    "title": (rendered.title or "通知")[:200],
                    "body": rendered.body,
                    "critical": plan.critical,
                    "payload": inbox_payload(plan.context),
                    "is_read": False,
                    "created_at": now,
                    "read_at": None,
                }
            )
            if plan.critical and self.proof.eligible(
                cause_event_type=event.type, cause_source=event.source
            ):
                batch.proofs.append(row)


class _RowView:
    """Attribute access to a delivery dict, so that dicts and rows report alike."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__.update(row)


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one delivery attempt (or a provider's receipt)."""

    row: Any
    outcome: SendOutcome | None
    error: ChannelError | None
    tried: int


class Transitions:
    """Applies attempt results: sent/delivered, retry with backoff, dead-letter and SMS fallback."""

    def __init__(self, session: AsyncSession, *, settings: Settings, proof: ProofOfService) -> None:
        self.session = session
        self.settings = settings
        self.proof = proof
        self.repo = DeliveryRepository(session)

    def backoff(self, tried: int) -> float:
        """Seconds before the next attempt (the suite's one backoff schedule)."""
        return backoff_seconds(
            tried,
            base=self.settings.delivery_base_backoff_seconds,
            cap=self.settings.delivery_max_backoff_seconds,
        )

    async def apply(self, attempts: Sequence[Attempt], *, now: datetime) -> int:
        """Record every result in one transaction; the number of proofs of service written."""
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        delivered: list[Any] = []
        dead_sms: list[Any] = []
        for attempt in attempts:
            row = attempt.row
            change: dict[str, Any] = {
                "_id": row.id,
                "attempts": attempt.tried,
                "claimed_until": None,
                "updated_at": now,
                "sent_at": row.sent_at,
                "delivered_at": row.delivered_at,
                "provider_message_id": row.provider_message_id,
                "next_attempt_at": row.next_attempt_at,
                "last_error": None,
            }
            if attempt.outcome is not None:
                status = attempt.outcome.status
                change["sent_at"] = row.sent_at or now
                if status is DeliveryStatus.DELIVERED:
                    change["delivered_at"] = now
                if attempt.outcome.provider_message_id:
                    change["provider_message_id"] = attempt.outcome.provider_message_id
                detail = None
            else:
                assert attempt.error is not None
                detail = mask_contacts(str(attempt.error))[:2000]
                change["last_error"] = detail
                last = (
                    attempt.error.permanent or attempt.tried >= self.settings.delivery_max_attempts
                )
                if last:
                    status = DeliveryStatus.DEAD
                    if row.channel == Channel.SMS:
                        dead_sms.append(row)
                else:
                    status = DeliveryStatus.FAILED
                    change["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempt.tried))
            change["status"] = status.value
            updates.append(change)
            history.append(
                {"delivery_id": row.id, "status": status.value, "detail": detail, "at": now}
            )
            if (
                status is DeliveryStatus.DELIVERED
                and row.critical
                and self.proof.eligible(
                    cause_event_type=row.event_type, cause_source=row.event_source
                )
            ):
                delivered.append(row)
        await self.repo.update_many(updates)
        await self.repo.append_history(history)
        proofs = await self.proof.report_many(self.session, delivered, delivered_at=now)
        # The fallbacks' inbox messages are numbered once, after every fallback's other writes.
        messages: list[dict[str, Any]] = []
        for row in dead_sms:
            await self.fallback(row, now=now, inbox_later=messages)
        await InboxRepository(self.session).insert_many(messages)
        return proofs

    async def fallback(
        self, row: Any, *, now: datetime, inbox_later: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A dead SMS falls back to the configured channels it has not reached yet."""
        channels = tuple(Channel(c) for c in self.settings.sms_fallback_channels if c != "sms")
        if not channels:
            return []
        audience = Audience(RecipientKind(row.recipient_kind), row.recipient, channels)
        plan = Plan(
            critical=row.critical,
            jurisdiction=row.jurisdiction,
            audiences=[audience],
            context=dict(row.context),
        )
        fan_out = FanOut(self.session, settings=self.settings, proof=self.proof)
        return await fan_out.run(
            [(_envelope_of(row), plan)], now=now, fallback_of=row.id, inbox_later=inbox_later
        )


def quiet_until(profile: Any, now: datetime) -> datetime | None:
    """The end of the recipient's quiet hours when ``now`` falls inside them, else None."""
    if profile is None or profile.quiet_start is None or profile.quiet_end is None:
        return None
    if profile.quiet_start == profile.quiet_end:
        return None
    zone = ZoneInfo(profile.time_zone or CHINA_ZONE_NAME)
    local = now.astimezone(zone)
    current = local.time().replace(tzinfo=None)
    start, end = profile.quiet_start, profile.quiet_end
    inside = start <= current < end if start < end else current >= start or current < end
    if not inside:
        return None
    end_local = datetime.combine(local.date(), end, tzinfo=zone)
    if end_local <= local:
        end_local = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return end_local.astimezone(UTC)
