"""Consumes other services' events: ``licence.issued`` stops the Art. 44 delivery clock, and
notify's ``notification.delivered`` (proof of service, 送达) joins the application's history.

Each event id is recorded in the inbox in the same transaction as its effect, so a redelivery does
nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from approval.clocks.schemas import EventIntake
from approval.clocks.service import ClockKeeper
from approval.db import inbox_events
from approval.repository import ApplicationRepository
from approval.transitions import append_audit
from govshared.applications import ApplicationState
from govshared.chinatime import CHINA
from govshared.events import CloudEvent, EventType, LicenceEventData, NotificationDeliveredData
from govshared.inbox import record_event_once

logger = logging.getLogger(__name__)
CONSUMER = "approval"


# The licence events that deliver an approved application's certificate (Art. 44): a new licence,
# a changed one (Art. 49), a renewed one (Art. 50); the audit trail's action for each. The same
# events without an application (the authority's own change, a reinstatement) stop nothing.
DELIVERED_BY: dict[str, str] = {
    EventType.LICENCE_ISSUED: "licence_issued",
    EventType.LICENCE_CHANGED: "licence_changed",
    EventType.LICENCE_RENEWED: "licence_renewed",
}


class EventConsumer:
    """Applies license's and notify's events, exactly once per event id."""

    def __init__(self, session: AsyncSession, *, keeper: ClockKeeper) -> None:
        self.session = session
        self.keeper = keeper

    async def consume(self, events: list[CloudEvent]) -> EventIntake:
        """Apply a delivery; other types are recorded and ignored, redeliveries do nothing."""
        processed = duplicates = ignored = invalid = 0
        for event in events:
            if not await record_event_once(
                self.session,
                inbox_events,
                consumer=CONSUMER,
                event_id=event.id,
                event_type=event.type,
            ):
                duplicates += 1
                continue
            if event.type == EventType.NOTIFICATION_DELIVERED:
                if await self._proof_of_service(event):
                    processed += 1
                else:
                    invalid += 1
                continue
            action = DELIVERED_BY.get(event.type)
            if action is None:
                ignored += 1
                continue
            try:
                data = LicenceEventData.model_validate(event.data)
            except ValidationError as exc:
                # Redelivering a malformed event cannot fix it: record it, log it, move on.
                logger.warning(
                    "event data does not match its schema",
                    extra={"event_id": event.id, "event_type": event.type, "errors": exc.errors()},
                )
                invalid += 1
                continue
            if data.application_id is None:
                ignored += 1
                continue
            await self.keeper.delivered(
                data.application_id,
                on=data.occurred_at.astimezone(CHINA).date(),
                now=datetime.now(UTC),
            )
            await self._note(
                data.application_id,
                action=action,
                actor=("service:license", "service"),
                details={"licence_no": data.licence_no, "licence_type": data.licence_type},
            )
            processed += 1
        return EventIntake(
            received=len(events),
            processed=processed,
            duplicates=duplicates,
            ignored=ignored,
            invalid=invalid,
        )

    async def _proof_of_service(self, event: CloudEvent) -> bool:
        """Record notify's proof that a notice reached the applicant (送达) in the audit trail."""
        try:
            data = NotificationDeliveredData.model_validate(event.data)
            application_id = uuid.UUID(str(data.subject))
        except (ValidationError, ValueError) as exc:
            logger.warning(
                "proof of service without an application",
                extra={"event_id": event.id, "error": str(exc)},
            )
            return False
        return await self._note(
            application_id,
            action="notice_served",
            actor=("service:notify", "service"),
            details={
                "notification_id": str(data.notification_id),
                "cause_event_type": data.cause_event_type,
                "channel": data.channel,
                "recipient": data.recipient,
                "delivered_at": data.delivered_at.isoformat(),
            },
        )

    async def _note(
        self,
        application_id: uuid.UUID,
        *,
        action: str,
        actor: tuple[str, str],
        details: dict[str, Any],
    ) -> bool:
        """Append an entry that changes no state to the application's trail; False if unknown.

        The row lock serialises it with lifecycle actions, which read the chain's end only after
        their own update has locked the row.
        """
        applications = ApplicationRepository(self.session)
        application = await applications.get_for_update(application_id)
        if application is None:
            return False
        last_seq, last_hash = await applications.chain_end(application_id)
        state = ApplicationState(application.state)
        await append_audit(
            self.session,
            application_id=application_id,
            seq=last_seq + 1,
            prev_hash=last_hash,
            action=action,
            from_state=state,
            to_state=state,
            actor=actor,
            at=datetime.now(UTC),
            details=details,
        )
        return True
