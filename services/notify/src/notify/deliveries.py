"""Staff's view of deliveries: the dead-letter list, a delivery's status history, replay, and
the SMS provider's receipts; and recipients' preferences. The delivery engine (fan-out, composing,
sending, retries) is ``notify.delivery``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from govshared import jurisdictions
from govshared.auth import Principal, Role
from govshared.db import after_commit
from notify.channels.base import ChannelError, SendOutcome
from notify.config import Settings
from notify.delivery import (
    Attempt,
    Composer,
    ProofOfService,
    Transitions,
    utcnow,
)
from notify.documents import inbox_payload
from notify.errors import DeliveryNotFound, NotReplayable, TemplateNotFound
from notify.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    RecipientKind,
    RecipientProfile,
)
from notify.repository import (
    DeliveryRepository,
    InboxRepository,
    ProfileRepository,
    TemplateRepository,
)
from notify.schemas import ProfileIn
from notify.templates.builtin import STAFF_CHANNEL
from notify.webhook_body import webhook_payload, webhook_replayable

WakeHook = Callable[[AsyncSession], None]


@dataclass(frozen=True, slots=True)
class Wakeups:
    """Who is woken once a transaction that queued work commits: the delivery worker for queued
    deliveries, this process's inbox streams for new messages (None: nobody, e.g. no workers)."""

    on_queued: WakeHook | None = None
    on_inbox: WakeHook | None = None

    def after(self, session: AsyncSession, created: Sequence[dict[str, Any]]) -> None:
        """Wake, after the commit, whoever the created deliveries concern."""
        if self.on_queued is not None and any(
            r["status"] == DeliveryStatus.QUEUED for r in created
        ):
            after_commit(session, self.on_queued)
        if self.on_inbox is not None and any(r["channel"] == Channel.INBOX for r in created):
            after_commit(session, self.on_inbox)


class DeliveryService:
    """Deliveries as staff see and replay them, bound to one transaction's session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        proof: ProofOfService,
        wakeups: Wakeups,
    ) -> None:
        self.session = session
        self.settings = settings
        self.proof = proof
        self.wakeups = wakeups
        self.inbox = InboxRepository(session)
        self.deliveries = DeliveryRepository(session)

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
        messages: list[dict[str, Any]] = []
        if delivery.body is None:
            if delivery.channel == Channel.WEBHOOK and not webhook_replayable(delivery.payload):
                # Recorded before fan-out kept the envelope: the cause event is gone, and a
                # webhook without it would tell the enterprise nothing.
                raise NotReplayable("该回调投递未保存事件内容，无法重放")
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
            elif delivery.channel == Channel.WEBHOOK:
                delivery.payload = webhook_payload(dict(delivery.payload or {}), rendered)
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
            messages.append(
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
            )
            if self.wakeups.on_inbox is not None:
                after_commit(self.session, self.wakeups.on_inbox)
        else:
            delivery.status = DeliveryStatus.QUEUED
            if self.wakeups.on_queued is not None:
                after_commit(self.session, self.wakeups.on_queued)
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
        # Last: numbering the message locks the stream counter until this transaction commits.
        await self.inbox.insert_many(messages)
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
        if self.wakeups.on_queued is not None and not delivered:
            after_commit(self.session, self.wakeups.on_queued)
        await self.session.refresh(delivery)
        return delivery


class PreferenceService:
    """Recipients' contact details, quiet hours and disabled channels."""

    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.session = session
        self.settings = settings

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
