"""The licence events an inspection sends the holder (and staff) through the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from govshared.events import CloudEvent, EventType, LicenceEventData
from licensing import clock

SOURCE = "/services/license"
# Every optional field of the event data, at its default: the data is built as JSON directly.
_DEFAULTS: dict[str, Any] = {
    name: field.default
    for name, field in LicenceEventData.model_fields.items()
    if not field.is_required()
}


def _json(value: Any) -> Any:
    """A register value in the JSON form pydantic gives it (UUIDs and dates as strings)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def licence_event(
    licence: Any, event_type: EventType, *, reason: str, extra: dict[str, Any]
) -> CloudEvent:
    """A ``cn.gov.license.licence.*`` event about a register row (the licence's current version).

    Built without validation, its data straight in JSON form: every value comes from the
    register, validated when the licence was issued, and a draw builds thousands of these in one
    request (``test_inspection_rules`` holds the result to the validated model's)."""
    data = {
        **_DEFAULTS,
        "licence_id": str(licence.id),
        "licence_no": licence.licence_no,
        "licence_type": licence.licence_type,
        "holder_name": licence.holder_name,
        "holder_uscc": licence.holder_uscc,
        "status": licence.status,
        "valid_until": _json(licence.valid_until),
        "application_id": _json(licence.source_application_id),
        "reason": reason,
        "occurred_at": _json(clock.now()),
    }
    data.update((key, _json(value)) for key, value in extra.items())
    return CloudEvent.model_construct(
        specversion="1.0",
        id=str(uuid.uuid4()),
        source=SOURCE,
        type=str(event_type),
        subject=licence.licence_no,
        time=datetime.now(UTC),
        datacontenttype="application/json",
        data=data,
    )
