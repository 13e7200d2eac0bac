"""Consumes license's ``licence.issued`` events: the Art. 44 delivery clock stops on issue.

Each event id is recorded in the inbox in the same transaction as its effect, so a redelivery does
nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.service import CHINA
from approval.clocks.schemas import EventIntake
from approval.clocks.service import ClockKeeper
from approval.db import inbox_events
from govshared.events import CloudEvent, EventType, LicenceEventData
from govshared.inbox import record_event_once

logger = logging.getLogger(__name__)
CONSUMER = "approval"


class EventConsumer:
    """Applies license's events to the clocks, exactly once per event id."""

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
            if event.type != EventType.LICENCE_ISSUED:
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
            processed += 1
        return EventIntake(
            received=len(events),
            processed=processed,
            duplicates=duplicates,
            ignored=ignored,
            invalid=invalid,
        )
