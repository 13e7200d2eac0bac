"""Intake: approval's and license's events, and direct notices from other callers, become
notifications (rules → templates → deliveries) in the caller's one transaction."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from govshared.consumer import check_event_type
from govshared.events import CloudEvent, parse_data
from govshared.idempotency import claim_or_replay, key_owner, request_fingerprint
from notify.config import Settings
from notify.db import idempotency_keys, inbox_events
from notify.deliveries import Wakeups
from notify.delivery import (
    CONSUMER,
    DIRECT_SOURCE_PREFIX,
    Composer,
    FanOut,
    ProofOfService,
    notification_id,
    utcnow,
)
from notify.documents import DocumentLinks
from notify.errors import TemplateNotFound
from notify.models import Channel, RecipientKind
from notify.repository import (
    EventLogRepository,
    IdempotencyRepository,
    InboxRepository,
    TemplateRepository,
)
from notify.rules import (
    ENTERPRISE_CHANNELS,
    Audience,
    Plan,
    is_critical,
    jurisdiction_error,
    plan_event,
    template_context,
)
from notify.schemas import EventOutcome, EventResult, IngestResult, NotificationCreate

logger = logging.getLogger("notify.intake")


@dataclass(frozen=True, slots=True)
class Direct:
    """The result of a direct notification, or the response stored for a retried key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


class IntakeService:
    """Events and direct notices into deliveries, bound to one transaction's session."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: Settings,
        proof: ProofOfService,
        wakeups: Wakeups,
        links: DocumentLinks,
    ) -> None:
        self.session = session
        self.settings = settings
        self.proof = proof
        self.wakeups = wakeups
        self.links = links

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
            refused = jurisdiction_error(data)
            if refused is not None:
                logger.warning(
                    "event data invalid",
                    extra={"event_id": event.id, "event_type": event.type, "error": refused},
                )
                results.append(
                    EventResult(id=event.id, outcome=EventOutcome.INVALID, error=refused)
                )
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
            self.wakeups.after(self.session, created)
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
        check_event_type(body.event_type, principal)
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
        messages: list[dict[str, Any]] = []
        created = await fan_out.run([(event, plan)], now=now, strict=True, inbox_later=messages)
        response["deliveries"] = [
            {"id": str(r["id"]), "channel": r["channel"], "status": r["status"]} for r in created
        ]
        if idempotency_key is not None:
            await IdempotencyRepository(self.session).store_response(
                owner=owner, key=idempotency_key, body=json.dumps(response, ensure_ascii=False)
            )
        # Last: numbering the message holds the stream counter until this transaction commits.
        await InboxRepository(self.session).insert_many(messages)
        self.wakeups.after(self.session, created)
        return Direct(202, response, replayed=False)
