"""Renewal window, reminders, deemed renewal (Art. 50) and expiry across the licence timer.

Timers act on every licence they find, so each test runs on a database of its own; "today" is moved
by replacing ``licensing.clock.today``, which the service and the routes both read.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from govshared.auth import Role
from govshared.chinatime import CHINA
from govshared.events import EventType
from govshared.seal.pdf import china_date_text, extract_text
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.context import context_of
from licensing.db import outbox_events
from licensing.models import Licence

Issue = Callable[..., Awaitable[str]]
Issuer = Callable[[httpx.AsyncClient, Tokens, FastAPI], Issue]
FreshApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]
Deliverer = Callable[[httpx.AsyncClient, Tokens], Callable[..., Awaitable[httpx.Response]]]
NewEvent = Callable[..., dict[str, Any]]


async def _events(app: FastAPI, licence_no: str, kind: str) -> dict[str, Any]:
    async with app.state.sessionmaker() as s:
        payloads = (
            await s.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.payload.contains(licence_no))
                .where(outbox_events.c.destination == "notify")
                .where(outbox_events.c.event_type == f"cn.gov.license.licence.{kind}.v1")
            )
        ).scalars()
        [event] = [json.loads(p) for p in payloads]
    return dict(event)


async def _event_types(app: FastAPI, licence_no: str) -> list[str]:
    async with app.state.sessionmaker() as s:
        rows = (
            await s.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.payload.contains(licence_no))
                .where(outbox_events.c.destination == "notify")
                .order_by(outbox_events.c.created_at)
            )
        ).all()
    return [json.loads(r.payload)["type"].split(".")[-2] for r in rows]


def _set_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    monkeypatch.setattr(clock, "today", lambda: day)


async def test_art50_timely_renewal_pending_at_expiry_is_deemed_granted(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        licence = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        valid_until = date.fromisoformat(licence["valid_until"])
        # 届满三十日前: the last day to apply is 30 calendar days before the last valid day.
        assert licence["renewal_apply_by"] == (valid_until - timedelta(days=30)).isoformat()

        # Reminders at 90 and 45 days before expiry (before the last day to apply), once each.
        timers = context_of(app).timers
        assert (await timers.run_once(valid_until - timedelta(days=91))).reminded == 0
        assert (await timers.run_once(valid_until - timedelta(days=90))).reminded == 1
        assert (await timers.run_once(valid_until - timedelta(days=89))).reminded == 0
        reminder = await _events(app, licence_no, "renewal_due")
        assert f"请于{valid_until - timedelta(days=30)}前申请延续" in reminder["data"]["reason"]

        # On the last day to apply, the renewal is in time.
        _set_today(monkeypatch, valid_until - timedelta(days=30))
        requested = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert requested.status_code == 200, requested.text
        assert (
            requested.json()["renewal_requested_on"]
            == (valid_until - timedelta(days=30)).isoformat()
        )
        assert requested.json()["renewal_timely"] is True
        # A pending renewal silences the reminders.
        assert (await timers.run_once(valid_until - timedelta(days=7))).reminded == 0

        on_last_day = await timers.run_once(valid_until)
        assert (on_last_day.expired, on_last_day.deemed_renewed) == (0, 0)
        _set_today(monkeypatch, valid_until + timedelta(days=1))
        at_expiry = await timers.run_once(valid_until + timedelta(days=1))
        assert (at_expiry.expired, at_expiry.deemed_renewed) == (0, 1)
        # The renewal is announced once its certificate is sealed (by the worker's sealer).
        assert "renewed" not in await _event_types(app, licence_no)
        assert (await context_of(app).sealer.run_once()).sealed == 1
        assert (await timers.run_once(valid_until + timedelta(days=1))).deemed_renewed == 0

        renewed = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        assert renewed["version"] == 2 and renewed["status"] == "valid"
        assert renewed["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        assert date.fromisoformat(renewed["valid_until"]) > valid_until + timedelta(days=1800)
        assert [h["action"] for h in renewed["history"]] == [
            "issued",
            "renewal_requested",
            "superseded",
            "deemed_renewed",
        ]
        assert "第五十条" in renewed["history"][-1]["reason"]
        assert renewed["renewal_requested_on"] is None and renewed["renewal_timely"] is None
        check = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert check["result"] == "valid"
        assert await _event_types(app, licence_no) == ["issued", "renewal_due", "renewed"]

        # The deemed renewal's own sealed certificate, named by its event, verifies as valid.
        certificate = renewed["certificate"]
        assert certificate["status"] == "sealed" and certificate["version"] == 2
        pdf = (await client.get(f"/api/v1/licences/{licence_no}/pdf", headers=holder)).content
        assert hashlib.sha256(pdf).hexdigest() == certificate["pdf_sha256"]
        text = "".join(extract_text(pdf).split())
        assert "（电子证照第2版）" in text and licence_no in text
        assert f"{china_date_text(renewed['valid_from'])}至" in text
        renewed_event = await _events(app, licence_no, "renewed")
        assert renewed_event["data"]["document"]["document_id"] == certificate["id"]
        assert renewed_event["data"]["reason"].endswith("视为准予延续")
        verified = await client.post(
            "/api/v1/licences/verify", files={"file": ("l.pdf", pdf, "application/pdf")}
        )
        assert verified.json()["result"] == "valid" and verified.json()["version"] == 2


async def test_art70_licence_without_renewal_expires_and_is_cancelled(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        licence = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        valid_until = date.fromisoformat(licence["valid_until"])

        _set_today(monkeypatch, valid_until + timedelta(days=1))
        # Until the timer runs, the verdict already reads the date: not valid after the last day.
        stale = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert stale["result"] == "not_valid" and stale["status"] == "valid"
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (1, 0)
        expired = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert expired["status"] == "expired" and expired["status_label"] == "已过期"
        # 注销 follows expiry without renewal (Art. 70(1)).
        assert expired["cancelled_on"] == (valid_until + timedelta(days=1)).isoformat()
        assert "届满未延续" in expired["message"] and "注销" in expired["message"]
        detail = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        assert [h["action"] for h in detail["history"]] == ["issued", "expired", "cancelled"]
        assert detail["cancellation_ground"] == "expired"
        assert "第七十条第一项" in detail["cancellation_ground_label"]
        late = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert late.status_code == 409
        assert await _event_types(app, licence_no) == ["issued", "expired"]
        summary = (
            await client.get(f"/api/v1/enterprises/{uscc}/licences", headers=tokens.service())
        ).json()
        assert summary["items"][0]["status"] == "expired"


async def test_renewal_decided_before_expiry(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        approver = tokens.staff(Role.APPROVER, "310000")
        licence = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        valid_until = date.fromisoformat(licence["valid_until"])
        _set_today(monkeypatch, valid_until - timedelta(days=20))

        not_pending = await client.post(
            f"/api/v1/licences/{licence_no}/renewal/decision",
            json={"grant": True, "reason": "准予延续"},
            headers=approver,
        )
        assert not_pending.status_code == 409
        assert problem(not_pending)["code"] == "renewal_not_pending"
        late = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        # Within the last 30 days: late, but the authority may still decide it (the default).
        assert late.status_code == 200 and late.json()["renewal_timely"] is False
        granted = await client.post(
            f"/api/v1/licences/{licence_no}/renewal/decision",
            json={"grant": True, "reason": "经审查符合延续条件"},
            headers=approver,
        )
        assert granted.status_code == 200, granted.text
        assert granted.json()["version"] == 2
        assert granted.json()["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (0, 0)


async def _licence(client: httpx.AsyncClient, licence_no: str, holder: dict[str, str]) -> Any:
    return (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()


async def test_art50_renewal_a_year_ahead_is_on_time(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 届满三十日前 is a latest day, not a first one: a year ahead is on time.
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        _set_today(monkeypatch, valid_until - timedelta(days=365))
        requested = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert requested.status_code == 200, requested.text
        assert requested.json()["renewal_timely"] is True
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (0, 1)


async def test_art50_late_renewal_is_not_deemed_granted(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        # 29 days before expiry is one day after the last day to apply.
        _set_today(monkeypatch, valid_until - timedelta(days=29))
        late = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert late.status_code == 200, late.text
        assert late.json()["renewal_timely"] is False
        assert (
            "不适用视为准予延续"
            in (await _licence(client, licence_no, holder))["history"][-1]["reason"]
        )
        _set_today(monkeypatch, valid_until + timedelta(days=1))
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (1, 0)
        expired = await _licence(client, licence_no, holder)
        assert expired["status"] == "expired" and expired["version"] == 1
        assert "第五十条" in expired["status_reason"]


async def test_art50_late_renewal_refused_when_configured(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app(late_renewal="refuse") as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        _set_today(monkeypatch, valid_until - timedelta(days=30))
        on_time = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert on_time.status_code == 200, on_time.text

        other_uscc = random_uscc()
        other = await issuer(client, tokens, app)(uscc=other_uscc, item_code="JXW-XK-001")
        other_holder = tokens.enterprise(other_uscc)
        other_until = date.fromisoformat(
            (await _licence(client, other, other_holder))["valid_until"]
        )
        _set_today(monkeypatch, other_until - timedelta(days=29))
        refused = await client.post(f"/api/v1/licences/{other}/renewal", headers=other_holder)
        assert refused.status_code == 409
        assert problem(refused)["code"] == "renewal_too_late"


async def test_art50_renewal_filed_in_approval_is_deemed_granted(
    fresh_app: FreshApp,
    issuer: Issuer,
    deliverer: Deliverer,
    new_event: NewEvent,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # However it was filed: an approval application with business_type renew protects it too.
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        deliver = deliverer(client, tokens)
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        application_id = uuid.uuid4()
        renew = {"business_type": "renew"}
        submitted = new_event(
            uscc=uscc,
            application_id=application_id,
            event_type=EventType.APPLICATION_SUBMITTED,
            state="submitted",
            details=renew,
        )
        accepted = new_event(
            uscc=uscc,
            application_id=application_id,
            event_type=EventType.APPLICATION_ACCEPTED,
            state="accepted",
            details=renew,
        )
        assert (await deliver(submitted, accepted)).json()["processed"] == 2
        pending = await _licence(client, licence_no, holder)
        assert pending["renewal_timely"] is True
        assert pending["renewal_application_no"] == submitted["data"]["application_no"]
        assert pending["renewal_requested_on"] == clock.today().isoformat()

        _set_today(monkeypatch, valid_until + timedelta(days=1))
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (0, 1)
        renewed = await _licence(client, licence_no, holder)
        assert renewed["version"] == 2 and renewed["status"] == "valid"
        assert renewed["source_application_no"] == submitted["data"]["application_no"]
        # Approval's decision arriving after the deemed renewal does not renew a second time.
        approved = new_event(uscc=uscc, application_id=application_id, details=renew)
        assert (await deliver(approved)).json()["processed"] == 1
        assert (await _licence(client, licence_no, holder))["version"] == 2


async def test_art50_renewal_filed_in_approval_is_decided_there_and_renewed_once(
    fresh_app: FreshApp,
    issuer: Issuer,
    deliverer: Deliverer,
    new_event: NewEvent,
    tokens: Tokens,
) -> None:
    # One application, one decision: the licence service does not decide a renewal that approval
    # is processing, so approval's approval renews exactly once and cannot contradict a refusal.
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        deliver = deliverer(client, tokens)
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        application_id = uuid.uuid4()
        renew = {"business_type": "renew"}
        submitted = new_event(
            uscc=uscc,
            application_id=application_id,
            event_type=EventType.APPLICATION_SUBMITTED,
            state="submitted",
            details=renew,
        )
        assert (await deliver(submitted)).json()["processed"] == 1
        approver = tokens.staff(Role.APPROVER, "310000")
        for grant in (True, False):
            decided_here = await client.post(
                f"/api/v1/licences/{licence_no}/renewal/decision",
                json={"grant": grant, "reason": "经审查符合延续条件"},
                headers=approver,
            )
            assert decided_here.status_code == 409, decided_here.text
            assert problem(decided_here)["code"] == "renewal_decided_in_approval"
            assert submitted["data"]["application_no"] in problem(decided_here)["detail"]
        pending = await _licence(client, licence_no, holder)
        assert pending["version"] == 1 and pending["renewal_requested_on"] is not None

        approved = new_event(uscc=uscc, application_id=application_id, details=renew)
        assert (await deliver(approved)).json()["processed"] == 1
        renewed = await _licence(client, licence_no, holder)
        assert renewed["version"] == 2 and renewed["status"] == "valid"
        assert renewed["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        assert renewed["source_application_no"] == submitted["data"]["application_no"]
        assert renewed["renewal_requested_on"] is None


async def test_art50_renewal_filed_in_approval_late_or_denied_is_not_protected(
    fresh_app: FreshApp,
    issuer: Issuer,
    deliverer: Deliverer,
    new_event: NewEvent,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_app() as (app, client):
        deliver = deliverer(client, tokens)
        renew = {"business_type": "renew"}
        # Denied: the pending renewal ends with approval's decision.
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        application_id = uuid.uuid4()
        kinds = [
            (EventType.APPLICATION_SUBMITTED, "submitted"),
            (EventType.APPLICATION_DENIED, "denied"),
        ]
        for event_type, state in kinds:
            event = new_event(
                uscc=uscc,
                application_id=application_id,
                event_type=event_type,
                state=state,
                details=renew,
            )
            assert (await deliver(event)).json()["processed"] == 1
        denied = await _licence(client, licence_no, holder)
        assert denied["renewal_requested_on"] is None
        assert [h["action"] for h in denied["history"]][-2:] == [
            "renewal_requested",
            "renewal_refused",
        ]

        # Late: submitted within the last 30 days, the licence still expires at its end.
        late_uscc = random_uscc()
        late_no = await issuer(client, tokens, app)(uscc=late_uscc, item_code="JXW-XK-001")
        late_holder = tokens.enterprise(late_uscc)
        valid_until = date.fromisoformat(
            (await _licence(client, late_no, late_holder))["valid_until"]
        )
        submitted = new_event(
            uscc=late_uscc,
            item_code="JXW-XK-001",
            event_type=EventType.APPLICATION_SUBMITTED,
            state="submitted",
            details=renew,
        )
        applied = datetime.combine(valid_until - timedelta(days=29), time(10), tzinfo=CHINA)
        submitted["data"]["occurred_at"] = applied.isoformat()
        assert (await deliver(submitted)).json()["processed"] == 1
        assert (await _licence(client, late_no, late_holder))["renewal_timely"] is False
        _set_today(monkeypatch, valid_until + timedelta(days=1))
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert late_no in run.licence_nos and run.deemed_renewed == 0
        assert (await _licence(client, late_no, late_holder))["status"] == "expired"


async def test_licences_reminded_already_do_not_hold_back_a_due_reminder(
    fresh_app: FreshApp, issuer: Callable[..., Issue], tokens: Tokens
) -> None:
    """A timer pass claims a batch of 100 licences: 101 licences that had their 90-day reminder
    and expire sooner than one whose 90-day reminder is due today must not fill it, pass after
    pass, while that holder is never reminded."""
    async with fresh_app() as (app, client):
        issue = issuer(client, tokens, None)
        reminded = [await issue(uscc=random_uscc()) for _ in range(101)]
        due = await issue(uscc=random_uscc())
        today = clock.today()
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(Licence)
                .where(Licence.licence_no.in_(reminded))
                .values(valid_until=today + timedelta(days=60), renewal_reminders_sent=1)
            )
            await session.execute(
                update(Licence)
                .where(Licence.licence_no == due)
                .values(valid_until=today + timedelta(days=89))
            )
        run = await context_of(app).timers.run_once(today)
        assert run.reminded == 1 and run.licence_nos == [due]
        reminder = await _events(app, due, "renewal_due")
        assert "剩余89天" in reminder["data"]["reason"]
        # The 45-day reminder of the others comes when it is due, for all of them.
        timers = context_of(app).timers
        assert (await timers.run_once(today + timedelta(days=14))).reminded == 0
        at_45 = today + timedelta(days=15)
        assert (await timers.run_once(at_45)).reminded == 100
        assert (await timers.run_once(at_45)).reminded == 1


async def test_art50_a_change_keeps_the_pending_renewal_and_the_reminders_sent(
    fresh_app: FreshApp,
    issuer: Issuer,
    deliverer: Deliverer,
    new_event: NewEvent,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 变更 (the holder's, Art. 49, or the authority's, Art. 8) decided while a timely renewal
    is pending changes the particulars, not the renewal application: it stays pending and is
    deemed granted at expiry (Art. 50). The new version had dropped it, and the licence expired
    and was cancelled at its end; the reminders already sent came again."""
    async with fresh_app() as (app, client):
        deliver = deliverer(client, tokens)
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        timers = context_of(app).timers
        assert (await timers.run_once(valid_until - timedelta(days=90))).reminded == 1
        _set_today(monkeypatch, valid_until - timedelta(days=60))
        submitted = new_event(
            uscc=uscc,
            event_type=EventType.APPLICATION_SUBMITTED,
            state="submitted",
            details={"business_type": "renew"},
        )
        applied = datetime.combine(valid_until - timedelta(days=60), time(10), tzinfo=CHINA)
        submitted["data"]["occurred_at"] = applied.isoformat()
        assert (await deliver(submitted)).json()["processed"] == 1
        assert (await _licence(client, licence_no, holder))["renewal_timely"] is True

        change = new_event(
            uscc=uscc, details={"business_type": "change", "particulars": {"仓储地址": "新址"}}
        )
        assert (await deliver(change)).json()["processed"] == 1
        own_change = await client.post(
            f"/api/v1/licences/{licence_no}/changes",
            json={
                "particulars": {"仓储面积": "500平方米"},
                "reason": "规划调整",
                "legal_basis": "《中华人民共和国行政许可法》第八条第二款",
                "compensation_note": "依法给予补偿",
            },
            headers=tokens.staff(Role.APPROVER, "310000"),
        )
        assert own_change.status_code == 200, own_change.text
        changed = await _licence(client, licence_no, holder)
        assert changed["version"] == 3
        assert changed["particulars"] == {"仓储地址": "新址", "仓储面积": "500平方米"}
        assert changed["renewal_requested_on"] == (valid_until - timedelta(days=60)).isoformat()
        assert changed["renewal_timely"] is True
        assert changed["renewal_application_no"] == submitted["data"]["application_no"]
        # The 90-day reminder is not sent a second time for the changed version.
        assert (await timers.run_once(valid_until - timedelta(days=50))).reminded == 0
        assert (await _event_types(app, licence_no)).count("renewal_due") == 1

        _set_today(monkeypatch, valid_until + timedelta(days=1))
        run = await timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (0, 1)
        renewed = await _licence(client, licence_no, holder)
        assert renewed["status"] == "valid" and renewed["version"] == 4
        assert renewed["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        assert renewed["particulars"] == {"仓储地址": "新址", "仓储面积": "500平方米"}
        assert renewed["source_application_no"] == submitted["data"]["application_no"]


async def test_art50_a_suspended_licence_may_be_renewed_and_stays_suspended(
    fresh_app: FreshApp,
    issuer: Issuer,
    tokens: Tokens,
    serve_penalty_notice: Callable[..., Awaitable[dict[str, date]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """暂扣 is a penalty for a term, not the end of the licence: its holder still applies for
    renewal in time (Art. 50), and a timely renewal undecided at expiry is deemed granted, the
    suspension running on in the new version. The register refused the application (409) and let
    the licence expire and be cancelled: a 暂扣 of weeks became the loss of the licence, a heavier
    penalty than the one decided (行政处罚法 Art. 5, 过罚相当)."""
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        approver = tokens.staff(Role.APPROVER, "310000")
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        start = valid_until - timedelta(days=60)
        _set_today(monkeypatch, start)
        await serve_penalty_notice(client, licence_no, on=start)
        suspended = await client.post(
            f"/api/v1/licences/{licence_no}/suspension",
            json={
                "legal_basis": "《食盐专营办法》第二十九条",
                "reason": "违反食盐储存规定，暂扣三个月",
                "penalty_decision_no": "沪盐罚〔2026〕58号",
                "hearing": "waived",
                "suspended_until": (start + timedelta(days=90)).isoformat(),
            },
            headers=approver,
        )
        assert suspended.status_code == 200, suspended.text

        requested = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert requested.status_code == 200, requested.text
        assert requested.json()["status"] == "suspended"
        assert requested.json()["renewal_timely"] is True

        _set_today(monkeypatch, valid_until + timedelta(days=1))
        run = await context_of(app).timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (0, 1)
        renewed = await _licence(client, licence_no, holder)
        assert renewed["version"] == 2
        assert renewed["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        # Still suspended, on the same decision, until reinstated.
        assert renewed["status"] == "suspended" and renewed["cancelled_on"] is None
        assert renewed["act_details"]["penalty_decision_no"] == "沪盐罚〔2026〕58号"
        verdict = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert verdict["status"] == "suspended" and verdict["valid_now"] is False
        reinstated = await client.post(
            f"/api/v1/licences/{licence_no}/reinstatement",
            json={"reason": "暂扣期满，整改完成"},
            headers=approver,
        )
        assert reinstated.status_code == 200, reinstated.text
        assert reinstated.json()["status"] == "valid" and reinstated.json()["version"] == 2


async def test_a_suspension_ends_the_day_after_its_term(
    fresh_app: FreshApp,
    issuer: Issuer,
    tokens: Tokens,
    serve_penalty_notice: Callable[..., Awaitable[dict[str, date]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """暂扣 is a penalty for a term (行政处罚法 第九条): the day after its last day the licence is
    valid again and the public verification says so. It stayed suspended until staff acted, and
    anyone checking the licence was told it could not be used. A suspension without a term waits
    for staff."""
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        approver = tokens.staff(Role.APPROVER, "310000")
        valid_until = date.fromisoformat(
            (await _licence(client, licence_no, holder))["valid_until"]
        )
        start = valid_until - timedelta(days=200)
        _set_today(monkeypatch, start)
        await serve_penalty_notice(client, licence_no, on=start)
        last_day = start + timedelta(days=30)
        suspended = await client.post(
            f"/api/v1/licences/{licence_no}/suspension",
            json={
                "legal_basis": "《食盐专营办法》第二十九条",
                "reason": "违反食盐储存规定，暂扣一个月",
                "penalty_decision_no": "沪盐罚〔2026〕59号",
                "hearing": "waived",
                "suspended_until": last_day.isoformat(),
            },
            headers=approver,
        )
        assert suspended.status_code == 200, suspended.text

        timers = context_of(app).timers
        _set_today(monkeypatch, last_day)
        assert (await timers.run_once(last_day)).reinstated == 0
        assert (await _licence(client, licence_no, holder))["status"] == "suspended"

        after = last_day + timedelta(days=1)
        _set_today(monkeypatch, after)
        assert (await timers.run_once(after)).reinstated == 1
        assert (await timers.run_once(after)).reinstated == 0  # once
        licence = await _licence(client, licence_no, holder)
        assert licence["status"] == "valid" and licence["act_details"] is None
        verdict = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert verdict["status"] == "valid" and verdict["valid_now"] is True
        ended = [h for h in licence["history"] if h["action"] == "reinstated"]
        assert len(ended) == 1 and "暂扣期限" in ended[0]["reason"]
