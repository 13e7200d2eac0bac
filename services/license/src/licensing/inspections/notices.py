"""The licence events an inspection sends the holder (and staff) through the outbox."""

from __future__ import annotations

from typing import Any

from govshared.events import CloudEvent, EventType, LicenceEventData, make_event
from licensing import clock

SOURCE = "/services/license"


def licence_event(
    licence: Any, event_type: EventType, *, reason: str, extra: dict[str, Any]
) -> CloudEvent:
    """A ``cn.gov.license.licence.*`` event about a register row (the licence's current version)."""
    # Built without validation: every value comes from the register, validated when the
    # licence was issued (a draw builds thousands of these in one request).
    data = LicenceEventData.model_construct(
        licence_id=licence.id,
        licence_no=licence.licence_no,
        licence_type=licence.licence_type,
        holder_name=licence.holder_name,
        holder_uscc=licence.holder_uscc,
        status=licence.status,
        valid_until=licence.valid_until,
        application_id=licence.source_application_id,
        reason=reason,
        occurred_at=clock.now(),
        **extra,
    )
    return make_event(type=event_type, source=SOURCE, subject=data.licence_no, data=data)
