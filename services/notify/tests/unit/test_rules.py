"""Rules: criticality, audiences and the quiet-hours window (fast, no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from types import SimpleNamespace

from govshared.events import CloudEvent, EventType, parse_data
from govshared.testing import random_uscc
from notify.delivery import quiet_until
from notify.models import Channel, RecipientKind
from notify.rules import is_critical, plan_event, webhook_matches


def event(event_type: EventType, **data: object) -> CloudEvent:
    payload = {
        "application_id": str(uuid.uuid4()),
        "application_no": "310115-20261128-0001",
        "item_code": "JXW-XK-002",
        "item_name": "食盐定点批发企业审批",
        "applicant_uscc": random_uscc(),
        "applicant_name": "上海盐业示范有限公司",
        "jurisdiction": "310115",
        "state": "submitted",
        "occurred_at": "2026-11-28T10:00:00+08:00",
        **data,
    }
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/services/approval",
        type=str(event_type),
        time=datetime.now(UTC),
        data=payload,
    )


def test_statutory_notices_are_critical() -> None:
    critical = {
        EventType.APPLICATION_ACCEPTED,
        EventType.APPLICATION_DEEMED_ACCEPTED,
        EventType.APPLICATION_REJECTED,
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
        EventType.APPLICATION_PAUSED,
        EventType.APPLICATION_EXTENDED,
        EventType.APPLICATION_APPROVED,
        EventType.APPLICATION_DENIED,
        EventType.LICENCE_ISSUED,
        EventType.LICENCE_REVOKED,
    }
    for event_type in EventType:
        assert is_critical(str(event_type)) == (event_type in critical), event_type


def test_submission_notifies_applicant_and_acceptors() -> None:
    submitted = event(EventType.APPLICATION_SUBMITTED)
    plan = plan_event(submitted, parse_data(submitted))
    assert not plan.critical
    kinds = [(a.kind, a.recipient) for a in plan.audiences]
    assert kinds == [
        (RecipientKind.ENTERPRISE, submitted.data["applicant_uscc"]),
        (RecipientKind.STAFF, "staff:310115:acceptor"),
    ]
    assert plan.audiences[0].channels == (
        Channel.INBOX,
        Channel.EMAIL,
        Channel.SMS,
        Channel.WEBHOOK,
    )
    assert plan.audiences[1].channels == (Channel.INBOX,)


def test_overdue_clock_goes_to_the_worker_and_the_head_not_the_applicant() -> None:
    overdue = event(EventType.APPLICATION_CLOCK_OVERDUE, state="in_review", due_on="2026-12-01")
    plan = plan_event(overdue, parse_data(overdue))
    assert [a.recipient for a in plan.audiences] == ["staff:310115:reviewer", "staff:310115:head"]
    assert plan.context["due_on"] == "2026年12月1日"


def test_webhook_patterns() -> None:
    assert webhook_matches([], "cn.gov.approval.application.accepted.v1")
    assert webhook_matches(["cn.gov.approval.*"], "cn.gov.approval.application.accepted.v1")
    assert not webhook_matches(["cn.gov.license.*"], "cn.gov.approval.application.accepted.v1")


def profile(start: time, end: time, zone: str = "Asia/Shanghai") -> SimpleNamespace:
    return SimpleNamespace(quiet_start=start, quiet_end=end, time_zone=zone)


def test_quiet_hours_across_midnight_by_time_zone() -> None:
    night = profile(time(22, 0), time(8, 0))
    # 23:30 in Shanghai is 15:30 UTC: quiet until 08:00 Shanghai = 00:00 UTC next day.
    at = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
    assert quiet_until(night, at) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    # 07:59 Shanghai: still quiet, until 08:00 the same day.
    assert quiet_until(night, datetime(2026, 11, 28, 23, 59, tzinfo=UTC)) == datetime(
        2026, 11, 29, 0, 0, tzinfo=UTC
    )
    # 12:00 Shanghai: not quiet.
    assert quiet_until(night, datetime(2026, 11, 28, 4, 0, tzinfo=UTC)) is None
    # The same instant is daytime in New York's zone rules differently.
    assert quiet_until(profile(time(22, 0), time(8, 0), "America/New_York"), at) is None
    assert quiet_until(None, at) is None
