"""The CloudEvents envelope and event data contracts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from govshared.events import (
    ApplicationEventData,
    CloudEvent,
    EventType,
    make_event,
    parse_data,
)
from govshared.outbox import parse_batch


def _data() -> ApplicationEventData:
    return ApplicationEventData(
        application_id=uuid.uuid4(),
        application_no="310000-20261128-ABCDEF12",
        item_code="JXW-XK-002",
        item_name="食盐定点批发企业审批",
        applicant_uscc="91350100M000100Y43",
        applicant_name="示范公司",
        jurisdiction="310000",
        state="submitted",
        occurred_at=datetime.now(UTC),
        details={"item_version": 1, "business_type": "new"},
    )


def test_envelope_round_trip_and_batch() -> None:
    event = make_event(
        type=EventType.APPLICATION_SUBMITTED, source="/services/approval", subject="s", data=_data()
    )
    assert event.specversion == "1.0"
    one = parse_batch(event.model_dump_json().encode())
    many = parse_batch(f"[{event.model_dump_json()},{event.model_dump_json()}]".encode())
    assert one == [event] and len(many) == 2
    assert isinstance(parse_data(one[0]), ApplicationEventData)


def test_contract_rejects_bad_data() -> None:
    event = make_event(
        type=EventType.APPLICATION_SUBMITTED, source="/s", subject=None, data=_data()
    )
    broken = CloudEvent.model_validate({**event.model_dump(), "data": {"applicant_uscc": "bad"}})
    with pytest.raises(ValidationError):
        parse_data(broken)
    with pytest.raises(ValidationError):
        CloudEvent.model_validate({**event.model_dump(), "specversion": "0.3"})
