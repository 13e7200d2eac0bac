"""Rules: criticality, audiences and the quiet-hours window (fast, no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from types import SimpleNamespace

from govshared.applications import OPEN_STATES, ApplicationState
from govshared.chinatime import CHINA_ZONE_NAME
from govshared.events import CloudEvent, EventType, parse_data
from govshared.testing import random_uscc
from notify.delivery import quiet_until
from notify.documents import DocumentLinks, attachment_filename, attachment_of
from notify.models import Channel, RecipientKind
from notify.rules import is_critical, plan_event, webhook_matches

from ..conftest import document_ref, licence_event


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
        EventType.DOCUMENT_ISSUED,
        EventType.LICENCE_ISSUED,
        # Each act that suspends or ends a licence, and an order to rectify, is a statutory notice
        # (issue 14: 事先告知 of a penalty, 暂扣, 撤销, 撤回, 吊销, 注销, expiry with its 注销, 责令限期整改).
        EventType.LICENCE_PENALTY_NOTIFIED,
        EventType.LICENCE_SUSPENDED,
        EventType.LICENCE_REVOKED,
        EventType.LICENCE_WITHDRAWN,
        EventType.LICENCE_PENALTY_REVOKED,
        EventType.LICENCE_CANCELLED,
        EventType.LICENCE_EXPIRED,
        EventType.LICENCE_RECTIFICATION_ORDERED,
        # A 双随机 result may order 限期整改 (issue 20); the notice that it was drawn is not one.
        EventType.LICENCE_INSPECTED,
        # A missed 限期整改: a serious credit record and a proposed act.
        EventType.LICENCE_RECTIFICATION_MISSED,
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
    overdue = event(EventType.APPLICATION_CLOCK_OVERDUE, state="accepted", due_on="2026-12-01")
    plan = plan_event(overdue, parse_data(overdue))
    assert [a.recipient for a in plan.audiences] == ["staff:310115:reviewer", "staff:310115:head"]
    assert plan.context["due_on"] == "2026年12月1日"


def test_a_missed_correction_goes_to_the_holder_and_the_staff_who_carry_out_acts() -> None:
    envelope = licence_event(EventType.LICENCE_RECTIFICATION_MISSED, random_uscc())
    envelope["data"].update(jurisdiction="310115", rectify_by="2027-01-20")
    missed = CloudEvent.model_validate(envelope)
    plan = plan_event(missed, parse_data(missed))
    assert plan.critical and plan.jurisdiction == "310115"
    assert [(a.kind, a.recipient) for a in plan.audiences] == [
        (RecipientKind.ENTERPRISE, envelope["data"]["holder_uscc"]),
        (RecipientKind.STAFF, "staff:310115:approver"),
        (RecipientKind.STAFF, "staff:310115:head"),
    ]
    assert all(a.template_slot == "staff_inbox" for a in plan.audiences[1:])
    # Other licence events reach the holder alone, as before.
    inspected = CloudEvent.model_validate(licence_event(EventType.LICENCE_INSPECTED, random_uscc()))
    assert [a.kind for a in plan_event(inspected, parse_data(inspected)).audiences] == [
        RecipientKind.ENTERPRISE
    ]


def test_a_clock_alarm_goes_to_whoever_the_case_waits_for_in_each_open_state() -> None:
    # A reviewed case (in_review) waits for the approver's decision: its alarm reached the
    # reviewers before, the rules keying a state "reviewed" that approval never sends.
    expected = {
        ApplicationState.SUBMITTED: "acceptor",
        ApplicationState.SUPPLEMENT_REQUESTED: "acceptor",
        ApplicationState.ACCEPTED: "reviewer",
        ApplicationState.IN_REVIEW: "approver",
        ApplicationState.PAUSED: "reviewer",
    }
    assert set(expected) == OPEN_STATES
    for state, role in expected.items():
        warning = event(EventType.APPLICATION_CLOCK_WARNING, state=state, due_on="2026-12-01")
        plan = plan_event(warning, parse_data(warning))
        assert [a.recipient for a in plan.audiences] == [f"staff:310115:{role}"], state


def test_webhook_patterns() -> None:
    assert webhook_matches([], "cn.gov.approval.application.accepted.v1")
    assert webhook_matches(["cn.gov.approval.*"], "cn.gov.approval.application.accepted.v1")
    assert not webhook_matches(["cn.gov.license.*"], "cn.gov.approval.application.accepted.v1")


def profile(start: time, end: time, zone: str = CHINA_ZONE_NAME) -> SimpleNamespace:
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


LINKS = DocumentLinks(
    service_urls={"approval": "http://approval.internal/", "license": "http://license.internal"},
    public_urls={"approval": "https://onestop.example.gov.cn/", "license": "https://gw.example"},
    max_attachment_bytes=1_000_000,
)


def document_event(source: str = "/services/approval", **document: object) -> CloudEvent:
    uscc = random_uscc()
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=str(EventType.DOCUMENT_ISSUED),
        subject=str(uuid.uuid4()),
        time=datetime.now(UTC),
        data={
            "application_id": str(uuid.uuid4()),
            "application_no": "310115-20261128-0001",
            "item_code": "JXW-XK-002",
            "item_name": "食盐定点批发企业审批",
            "applicant_uscc": uscc,
            "applicant_name": "上海盐业示范有限公司",
            "jurisdiction": "310115",
            "occurred_at": "2026-11-28T10:00:00+08:00",
            "document": {**document_ref(b"%PDF-1.7 test"), **document},
        },
    )


def test_a_sealed_document_is_a_critical_notice_to_the_applicant_with_its_links() -> None:
    issued = document_event()
    plan = plan_event(issued, parse_data(issued), links=LINKS)
    assert plan.critical
    assert plan.jurisdiction == "310115"
    assert [(a.kind, a.recipient, a.channels) for a in plan.audiences] == [
        (RecipientKind.ENTERPRISE, issued.data["applicant_uscc"], plan.audiences[0].channels)
    ]
    assert Channel.EMAIL in plan.audiences[0].channels
    document = issued.data["document"]
    assert plan.context["download_url"] == (
        "https://onestop.example.gov.cn" + document["download_path"]
    )
    assert plan.context["document_attached"] is True
    assert plan.context["document_filename"] == "310000〔2026〕受字第3A9F01C2号.pdf"
    spec = attachment_of(issued.source, plan.context)
    assert spec is not None
    assert (spec.pdf_sha256, spec.pdf_size) == (document["pdf_sha256"], document["pdf_size"])
    assert LINKS.service_url(issued.source) == "http://approval.internal"


def test_a_document_is_attached_only_from_a_known_service_and_within_the_size_limit() -> None:
    for event in (
        document_event(source="/callers/someone"),
        document_event(pdf_size=1_000_001),
    ):
        plan = plan_event(event, parse_data(event), links=LINKS)
        assert plan.context["document_attached"] is False
        assert attachment_of(event.source, plan.context) is None
    # Without a public gateway the link is the issuing service's own.
    local = DocumentLinks(service_urls={"approval": "http://127.0.0.1:8001"})
    event = document_event()
    path = event.data["document"]["download_path"]
    assert local.download_url(event.source, path) == "http://127.0.0.1:8001" + path


def test_a_licence_event_with_a_certificate_is_critical_without_one_as_before() -> None:
    with_certificate = CloudEvent.model_validate(
        licence_event(
            EventType.LICENCE_CHANGED, random_uscc(), document=document_ref(b"%PDF certificate")
        )
    )
    plan = plan_event(with_certificate, parse_data(with_certificate), links=LINKS)
    assert plan.critical
    assert plan.context["document_attached"] is True
    assert plan.context["download_url"].startswith("https://gw.example/api/v1/")
    without = CloudEvent.model_validate(licence_event(EventType.LICENCE_CHANGED, random_uscc()))
    plan = plan_event(without, parse_data(without), links=LINKS)
    assert not plan.critical
    assert plan.context["document_attached"] is False
    assert "download_url" not in plan.context


def test_attachment_file_names_are_safe() -> None:
    assert attachment_filename("JY31000020260001", "食品经营许可证") == "JY31000020260001.pdf"
    assert attachment_filename('a/b\\c:"d"', "x") == "a_b_c__d_.pdf"
    assert attachment_filename("", "受理通知书") == "受理通知书.pdf"
    assert attachment_filename(" . ", None) == "document.pdf"
    assert len(attachment_filename("号" * 500, None)) == 64
