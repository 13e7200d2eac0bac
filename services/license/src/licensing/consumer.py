"""The CloudEvents consumer: each event's id is recorded in the inbox with its effect."""

from __future__ import annotations

import logging
import random

from pydantic import ValidationError

from govshared.applications import BusinessType
from govshared.events import CloudEvent, EventType, parse_application_data
from govshared.inbox import record_event_once
from licensing.db import inbox_events
from licensing.licences.records import LicenceRecords
from licensing.licences.reform_status import ReformStatuses
from licensing.licences.register import LicenceIssuance
from licensing.licences.schemas import EventIntake

logger = logging.getLogger("licensing.consumer")

CONSUMER = "license"
APPLICATION_EVENTS = "cn.gov.approval.application."


class EventConsumer:
    """Applies approval's events to the register, exactly once per event id."""

    def __init__(self, records: LicenceRecords, *, rng: random.Random) -> None:
        self.session = records.session
        self.issuance = LicenceIssuance(records, rng=rng)
        self.statuses = ReformStatuses(records.session)

    async def consume(self, events: list[CloudEvent]) -> EventIntake:
        """Apply a delivery; unknown types are recorded and ignored, redeliveries do nothing."""
        processed = duplicates = ignored = invalid = 0
        for event in events:
            first_time = await record_event_once(
                self.session,
                inbox_events,
                consumer=CONSUMER,
                event_id=event.id,
                event_type=event.type,
            )
            if not first_time:
                duplicates += 1
                continue
            if not event.type.startswith(APPLICATION_EVENTS):
                ignored += 1
                continue
            try:
                data = parse_application_data(event)
            except ValidationError as exc:
                # Redelivering a malformed event cannot fix it: record it, log it, move on.
                logger.warning(
                    "event data does not match its schema",
                    extra={"event_id": event.id, "event_type": event.type, "errors": exc.errors()},
                )
                invalid += 1
                continue
            await self.statuses.track_application(data)
            if data.details.business_type == BusinessType.RENEW:
                await self.issuance.lifecycle.on_renewal_application(event.type, data)
            if event.type == EventType.APPLICATION_APPROVED:
                await self.issuance.on_approved(data, event_id=event.id)
            processed += 1
        return EventIntake(
            received=len(events),
            processed=processed,
            duplicates=duplicates,
            ignored=ignored,
            invalid=invalid,
        )
