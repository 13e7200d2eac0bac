"""The CloudEvents consumer: each event's id is recorded in the inbox with its effect."""

from __future__ import annotations

import logging
import random

from pydantic import ValidationError

from govshared.applications import BusinessType
from govshared.event_details import ApplicationDetails
from govshared.events import (
    ApplicationEventData,
    CloudEvent,
    EventType,
    NotificationDeliveredData,
    parse_application_data,
)
from govshared.inbox import record_event_once
from govshared.problems import DomainError, ServiceUnavailable
from licensing.db import inbox_events
from licensing.errors import LicenceChangedMeanwhile
from licensing.licences.records import LicenceRecords
from licensing.licences.reform_status import ReformStatuses
from licensing.licences.register import LicenceIssuance
from licensing.licences.repository import history_row
from licensing.licences.schemas import EventIntake
from licensing.models import LicenceAction

logger = logging.getLogger("licensing.consumer")

CONSUMER = "license"
APPLICATION_EVENTS = "cn.gov.approval.application."
# How often an event is applied again when the licence it changes was changed meanwhile by
# another transaction (two relay replicas delivering two changes of one licence, a change by
# staff): each attempt reads the version the other committed.
APPLY_ATTEMPTS = 3


class EventConsumer:
    """Applies approval's events to the register, exactly once per event id."""

    def __init__(self, records: LicenceRecords, *, rng: random.Random) -> None:
        self.session = records.session
        self.issuance = LicenceIssuance(records, rng=rng)
        self.statuses = ReformStatuses(records.session)

    async def consume(self, events: list[CloudEvent]) -> EventIntake:
        """Apply a delivery; unknown types are recorded and ignored, redeliveries do nothing."""
        processed = duplicates = ignored = invalid = refused = 0
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
            if event.type == EventType.NOTIFICATION_DELIVERED:
                if await self._proof_of_service(event):
                    processed += 1
                else:
                    invalid += 1
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
            try:
                await self._apply_once(event, data)
            except DomainError as refusal:
                if refusal.status >= 500:
                    raise  # a database or a neighbour down: the delivery is retried whole
                # A refusal of the register as it stands (a licence suspended, revoked or expired
                # since the application was filed): redelivering the event cannot change that, and
                # answering an error would hold back every event delivered with it, again and
                # again. Staff settle it from the log.
                logger.warning(
                    "event not applied: the register refused it",
                    extra={
                        "event_id": event.id,
                        "event_type": event.type,
                        "application_no": data.application_no,
                        "code": refusal.code,
                        "detail": str(refusal),
                    },
                )
                refused += 1
                continue
            processed += 1
        return EventIntake(
            received=len(events),
            processed=processed,
            duplicates=duplicates,
            ignored=ignored,
            invalid=invalid,
            refused=refused,
        )

    async def _apply_once(
        self, event: CloudEvent, data: ApplicationEventData[ApplicationDetails]
    ) -> None:
        """Each event's effect in a savepoint of its own: one the register refuses leaves its id
        recorded and the rest of the delivery applied.

        A licence changed by another transaction between this one's read and its write is no
        refusal of the register: the event is applied again on the version committed meanwhile
        (PostgreSQL reads it once the other transaction has committed), and after a few such
        collisions the delivery is answered 503 and sent again by the relay, never dropped."""
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                async with self.session.begin_nested():
                    await self._apply(event.type, data, event_id=event.id)
                return
            except LicenceChangedMeanwhile:
                if attempt == APPLY_ATTEMPTS:
                    raise ServiceUnavailable(
                        "证照正被并发修改，请稍后重新投递", retry_after_seconds=1
                    ) from None
                logger.info(
                    "licence changed meanwhile: applying the event again",
                    extra={"event_id": event.id, "attempt": attempt},
                )

    async def _proof_of_service(self, event: CloudEvent) -> bool:
        """notify's proof that a notice of a licence (a suspension, a revocation, a penalty
        notice, an expiry…) reached its holder (送达): an entry in the licence's history, which
        is what staff show when the service of a decision is questioned."""
        try:
            data = NotificationDeliveredData.model_validate(event.data)
        except ValidationError as exc:
            logger.warning(
                "proof of service that does not match its schema",
                extra={"event_id": event.id, "errors": exc.errors()},
            )
            return False
        records = self.issuance.records
        licence = await records.repository.current(data.subject or "")
        if licence is None:
            logger.warning(
                "proof of service of an unknown licence",
                extra={"event_id": event.id, "subject": data.subject},
            )
            return False
        await records.repository.add_history(
            history_row(
                licence,
                action=LicenceAction.NOTICE_SERVED,
                from_status=licence.status,
                to_status=licence.status,
                reason=f"通知已送达（{data.channel}）",
                actor="service:notify",
                at=data.delivered_at,
                details={
                    "notification_id": str(data.notification_id),
                    "cause_event_id": data.cause_event_id,
                    "cause_event_type": data.cause_event_type,
                    "channel": data.channel,
                    "recipient": data.recipient,
                    "delivered_at": data.delivered_at.isoformat(),
                },
            )
        )
        return True

    async def _apply(
        self, event_type: str, data: ApplicationEventData[ApplicationDetails], *, event_id: str
    ) -> None:
        """An application event's effect on the register."""
        await self.statuses.track_application(data)
        if data.details.business_type == BusinessType.RENEW:
            await self.issuance.lifecycle.on_renewal_application(event_type, data)
        if event_type == EventType.APPLICATION_APPROVED:
            await self.issuance.on_approved(data, event_id=event_id)
