"""Statutory clocks through the REST API on PostgreSQL and SQLite: views, timers, queue, calendar.

Time is driven, never slept: ``context.today`` is the China date the service counts in, and the
timers take ``today`` in ``run_once``. Dates are in 2021 (real 调休) or in 2033 (not seeded, so
provisional until a test loads it), far from the other tests' applications, which are dated today.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approval import actions
from approval.action_read import ActionRead, read_for_action
from approval.catalogue.demo import required_materials
from approval.clocks.repository import ClockRepository
from approval.context import context_of
from approval.db import outbox_events
from approval.models import ApplicationEvent
from approval.worker import TimerWorker
from govshared.auth import Role
from govshared.db import mark_read_only
from govshared.events import (
    CLOUDEVENTS_JSON,
    EventType,
    LicenceEventData,
    NotificationDeliveredData,
    make_event,
)
from govshared.testing import Tokens, problem, random_uscc

RADIO = {  # JXW-XK-003: statutory limit 20, committed 15 working days
    "item_code": "JXW-XK-003",
    "applicant_name": "上海无线示范有限公司",
    "form": {"station_type": "固定台站"},
}
D = date.fromisoformat


def tolerate(item_code: str = "JXW-XK-003") -> dict[str, object]:
    """容缺受理 of every material the item's guide requires (these tests upload none)."""
    return {"tolerated_materials": required_materials(item_code), "deliver_by": "2099-12-31"}


@pytest.fixture
def set_today(app: FastAPI) -> Iterator[Callable[[str], None]]:
    """Set the service's China date; restored after the test."""
    today = context_of(app).today

    def setter(day: str) -> None:
        today.pin(D(day))

    yield setter
    today.pin(None)


async def _submit(client: httpx.AsyncClient, tokens: Tokens, uscc: str, **body: object) -> str:
    response = await client.post(
        "/api/v1/applications", json={**RADIO, **body}, headers=tokens.enterprise(uscc)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _act(
    client: httpx.AsyncClient, app_id: str, path: str, headers: dict[str, str], **body: object
) -> None:
    response = await client.post(
        f"/api/v1/applications/{app_id}/{path}", json=body, headers=headers
    )
    assert response.status_code == 200, response.text


async def _clocks(
    client: httpx.AsyncClient, app_id: str, headers: dict[str, str], as_of: str | None = None
) -> dict[str, dict[str, object]]:
    params = {"as_of": as_of} if as_of else {}
    response = await client.get(
        f"/api/v1/applications/{app_id}/clocks", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    return {c["kind"]: c for c in response.json()["clocks"]}


async def _events(session: AsyncSession, app_id: str, event_type: EventType) -> list[str]:
    await session.rollback()  # a fresh snapshot: the timers committed in other sessions
    await mark_read_only(session)
    rows = await session.execute(
        select(outbox_events.c.payload).where(
            outbox_events.c.event_type == str(event_type),
            outbox_events.c.destination == "notify",
            outbox_events.c.payload.contains(app_id),
        )
    )
    return list(rows.scalars())


async def test_worked_example_2021_with_tiaoxiu_pause_and_extension(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    uscc = random_uscc()
    set_today("2021-09-17")  # a Friday; Saturday 09-18 was a 调休 working day
    app_id = await _submit(client, tokens, uscc)
    applicant = tokens.enterprise(uscc)
    acceptance = (await _clocks(client, app_id, applicant))["acceptance"]
    # 09-18 (1), 09-19..21 中秋, 09-22..24 (2-4), Saturday 09-25 off, Sunday 09-26 worked (5)
    assert acceptance["due_on"] == "2021-09-26" and acceptance["budget_days"] == 5
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    reviewer = tokens.staff(Role.REVIEWER)
    await _act(client, app_id, "review", reviewer, opinion="材料齐全")
    clocks = await _clocks(client, app_id, applicant)
    assert clocks["acceptance"]["running"] is False
    assert clocks["acceptance"]["stop_reason"] == "accepted"
    decision = clocks["decision"]
    assert (decision["due_on"], decision["committed_due_on"]) == ("2021-10-21", "2021-10-14")
    set_today("2021-09-22")
    await _act(client, app_id, "pause", reviewer, pause_reason="expert_review", expected_days=5)
    paused = (await _clocks(client, app_id, applicant, as_of="2021-09-24"))["decision"]
    assert paused["is_paused"] is True and paused["pause_reason"] == "expert_review"
    set_today("2021-09-29")
    await _act(client, app_id, "resume", reviewer, reason="专家评审意见已收到")
    set_today("2021-10-08")
    await _act(
        client, app_id, "extend", tokens.staff(Role.HEAD), extension_days=10, reason="情况复杂"
    )
    staff_view = await _clocks(client, app_id, tokens.staff(Role.ACCEPTOR), as_of="2021-10-08")
    assert staff_view == await _clocks(client, app_id, applicant, as_of="2021-10-08")
    decision = staff_view["decision"]
    assert {
        k: decision[k]
        for k in (
            "budget_days",
            "extension_days",
            "paused_days",
            "used_days",
            "remaining_days",
            "due_on",
            "committed_due_on",
            "state",
            "depends_on_provisional",
        )
    } == {
        "budget_days": 20,
        "extension_days": 10,
        "paused_days": 6,  # (09-22, 09-29]: 09-23, 24, 26, 27, 28, 29
        "used_days": 4,
        "remaining_days": 26,
        "due_on": "2021-11-12",
        "committed_due_on": "2021-10-22",
        "state": "green",
        "depends_on_provisional": False,
    }
    near = (await _clocks(client, app_id, applicant, as_of="2021-11-09"))["decision"]
    assert (near["state"], near["remaining_days"]) == ("yellow", 3)
    late = (await _clocks(client, app_id, applicant, as_of="2021-11-15"))["decision"]
    assert late["state"] == "red"


async def test_supplement_restarts_the_acceptance_period(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _act(
        client,
        app_id,
        "supplement-request",
        tokens.staff(Role.ACCEPTOR),
        missing_items=["设台申请表"],
    )
    stopped = (await _clocks(client, app_id, tokens.enterprise(uscc)))["acceptance"]
    assert stopped["running"] is False and stopped["stop_reason"] == "supplement_requested"
    set_today("2021-09-22")
    await _act(
        client, app_id, "supplement", tokens.enterprise(uscc), changed_materials=["设台申请表"]
    )
    restarted = (await _clocks(client, app_id, tokens.enterprise(uscc)))["acceptance"]
    assert restarted["running"] is True
    assert (restarted["started_on"], restarted["due_on"]) == ("2021-09-22", "2021-09-28")


async def test_timer_deems_acceptance_once_as_of_the_day_materials_arrived(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    timers: TimerWorker = context_of(app).timers
    await timers.run_once(today=D("2021-09-26"))  # the last day: still the authority's
    detail = await client.get(f"/api/v1/applications/{app_id}", headers=tokens.enterprise(uscc))
    assert detail.json()["state"] == "submitted"
    await timers.run_once(today=D("2021-09-27"))
    await timers.run_once(today=D("2021-09-28"))  # a second run fires nothing more
    detail = await client.get(f"/api/v1/applications/{app_id}", headers=tokens.enterprise(uscc))
    assert detail.json()["state"] == "accepted"
    trail = (
        await client.get(f"/api/v1/applications/{app_id}/events", headers=tokens.enterprise(uscc))
    ).json()
    assert [e["action"] for e in trail] == ["submit", "deemed_accept"]
    assert trail[-1]["actor_role"] == "service"
    assert trail[-1]["details"]["accepted_on"] == "2021-09-17"
    verified = await client.get(
        f"/api/v1/applications/{app_id}/events/verify", headers=tokens.enterprise(uscc)
    )
    assert verified.json()["valid"] is True
    assert len(await _events(session, app_id, EventType.APPLICATION_DEEMED_ACCEPTED)) == 1
    clocks = await _clocks(client, app_id, tokens.enterprise(uscc))
    assert clocks["acceptance"]["stop_reason"] == "deemed_accepted"
    # the decision clock runs from the day the materials arrived
    assert clocks["decision"]["started_on"] == "2021-09-17"
    assert clocks["decision"]["due_on"] == "2021-10-21"


async def test_warning_and_overdue_fire_once_each(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    timers: TimerWorker = context_of(app).timers
    for day in ("2021-10-15", "2021-10-18", "2021-10-19"):  # yellow from 10-18 (3 left)
        await timers.run_once(today=D(day))
    assert len(await _events(session, app_id, EventType.APPLICATION_CLOCK_WARNING)) == 1
    assert await _events(session, app_id, EventType.APPLICATION_CLOCK_OVERDUE) == []
    for day in ("2021-10-21", "2021-10-22", "2021-10-25"):
        await timers.run_once(today=D(day))
    assert len(await _events(session, app_id, EventType.APPLICATION_CLOCK_OVERDUE)) == 1
    assert len(await _events(session, app_id, EventType.APPLICATION_CLOCK_WARNING)) == 1


async def test_an_extension_after_the_warning_warns_again_before_the_new_limit(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    """Extensions are granted around the first warning; the new limit gets its own."""
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    timers: TimerWorker = context_of(app).timers
    await timers.run_once(today=D("2021-10-18"))  # yellow: due 10-21
    assert len(await _events(session, app_id, EventType.APPLICATION_CLOCK_WARNING)) == 1
    set_today("2021-10-19")
    await _act(client, app_id, "extend", tokens.staff(Role.HEAD), extension_days=10, reason="复杂")
    decision = (await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]
    new_due = D(decision["due_on"])
    assert new_due > D("2021-10-21")
    day = D("2021-10-20")
    while day < new_due:
        await timers.run_once(today=day)
        day += timedelta(days=1)
    assert len(await _events(session, app_id, EventType.APPLICATION_CLOCK_WARNING)) == 2
    assert await _events(session, app_id, EventType.APPLICATION_CLOCK_OVERDUE) == []


async def test_a_paused_case_is_not_counted_overdue_in_the_statistics(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 45: the time a pause takes does not count against the authority."""
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    set_today("2021-09-22")
    reviewer = tokens.staff(Role.REVIEWER)
    await _act(client, app_id, "pause", reviewer, pause_reason="expert_review", expected_days=30)
    set_today("2021-10-25")  # past the limit the clock had before the pause (10-21)
    clocks = await _clocks(client, app_id, tokens.enterprise(uscc))
    assert clocks["decision"]["is_paused"] is True and clocks["decision"]["state"] != "red"
    report = await client.get(
        "/api/v1/statistics/timeliness",
        params={"item_code": "JXW-XK-003"},
        headers=tokens.staff(Role.HEAD, "310000"),
    )
    assert report.status_code == 200, report.text
    (item,) = report.json()["items"]
    assert item["overdue"] == 0


async def test_two_timer_workers_fire_each_timer_exactly_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    set_today("2021-09-17")
    ids = [await _submit(client, tokens, random_uscc()) for _ in range(6)]
    workers = [
        TimerWorker(
            sessionmaker=app.state.sessionmaker,
            outbox=context_of(app).outbox,
            warn_days=3,
            batch_size=1,
        )
        for _ in range(2)
    ]
    runs = await asyncio.gather(*(w.run_once(today=D("2021-09-27")) for w in workers))
    assert sum(r.deemed_accepted for r in runs) >= len(ids)
    for app_id in ids:
        assert len(await _events(session, app_id, EventType.APPLICATION_DEEMED_ACCEPTED)) == 1
        trail = await session.scalars(
            select(ApplicationEvent.action).where(
                ApplicationEvent.application_id == uuid.UUID(app_id),
                ApplicationEvent.action == "deemed_accept",
            )
        )
        assert len(list(trail)) == 1


async def test_loading_an_official_year_moves_open_deadlines(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    uscc = random_uscc()
    set_today("2033-09-26")  # a Monday; 2033 is provisional (statutory holidays, no 调休)
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    before = (await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]
    # Provisional: 国庆节 10-01..03 (Sat-Mon) with two days of 补假 (Art. 6), 10-04 and 10-05
    assert before["due_on"] == "2033-10-27" and before["depends_on_provisional"] is True
    schedule = {
        "notice": "国办发明电〔2032〕1号（测试）",
        "holidays": [{"date": f"2033-10-0{d}", "name": "国庆节"} for d in range(1, 8)],
        "adjusted_workdays": [{"date": "2033-10-08", "name": "国庆节调休"}],
    }
    loaded = await client.put(
        "/api/v1/calendar/years/2033", json=schedule, headers=tokens.staff(Role.ADMIN)
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["moved_deadlines"] >= 1
    after = (await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]
    # 10-03..07 (Mon-Fri) off, Saturday 10-08 worked (调休): one working day later
    assert after["due_on"] == "2033-10-28" and after["depends_on_provisional"] is False
    events = await _events(session, app_id, EventType.APPLICATION_CLOCK_WARNING)
    assert len(events) == 1
    assert '"reason":"calendar_changed"' in events[0].replace(" ", "")
    assert '"old_due_on":"2033-10-27"' in events[0].replace(" ", "")
    queue = await client.get(
        "/api/v1/staff/applications", params={"q": uscc}, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert queue.json()["items"][0]["due_on"] == "2033-10-28"


async def test_queue_is_sorted_by_earliest_due_date(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    uscc = random_uscc()
    name = f"期限排序{uscc[-6:]}有限公司"
    body = {"item_code": "JXW-XK-006", "applicant_name": name}
    set_today("2021-09-17")
    decided_later = await _submit(client, tokens, uscc, **body)
    await _act(
        client, decided_later, "accept", tokens.staff(Role.ACCEPTOR), **tolerate("JXW-XK-006")
    )  # 45 days
    set_today("2021-09-22")
    accepted_soon = await _submit(client, tokens, uscc, **body)  # due 2021-09-28
    set_today("2021-09-10")
    oldest_due = await _submit(client, tokens, uscc, **body)  # due 2021-09-17
    staff = tokens.staff(Role.ACCEPTOR, "310000")
    seen, dues, cursor = [], [], None
    while True:
        params: dict[str, str | int] = {"q": name, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/staff/applications", params=params, headers=staff)).json()
        seen += [a["id"] for a in page["items"]]
        dues += [a["due_on"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [oldest_due, accepted_soon, decided_later]
    assert dues == sorted(dues)


async def test_timeliness_statistics_per_item_and_authority(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    approver = tokens.staff(Role.APPROVER)
    await _act(client, app_id, "review", approver, opinion="同意")
    set_today("2021-09-30")
    await _act(client, app_id, "approve", approver, opinion="准予许可")
    clocks = await _clocks(client, app_id, tokens.enterprise(uscc))
    assert clocks["decision"]["used_days"] == 9 and clocks["decision"]["state"] == "green"
    # Art. 44, 10 working days: 10-08, Saturday 10-09 (调休), 10-11..15, 10-18..20
    assert clocks["delivery"]["due_on"] == "2021-10-20"
    report = await client.get(
        "/api/v1/statistics/timeliness",
        params={"item_code": "JXW-XK-003"},
        headers=tokens.staff(Role.HEAD, "310000"),
    )
    assert report.status_code == 200, report.text
    (item,) = report.json()["items"]
    assert item["key"] == "JXW-XK-003" and item["decided"] >= 1
    assert 0 < item["on_time_rate"] <= 1 and item["average_committed_days"] == 15
    assert report.json()["authorities"][0]["name"] == "上海市无线电管理局"
    forbidden = await client.get("/api/v1/statistics/timeliness", headers=tokens.enterprise(uscc))
    assert forbidden.status_code == 403


async def test_licence_issued_event_stops_the_delivery_clock_once(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    approver = tokens.staff(Role.APPROVER)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    await _act(client, app_id, "review", approver, opinion="同意")
    await _act(client, app_id, "approve", approver, opinion="准予许可")
    issued = make_event(
        type=EventType.LICENCE_ISSUED,
        source="/services/license",
        subject="SH-RADIO-0001",
        data=LicenceEventData(
            licence_id=uuid.uuid4(),
            licence_no="SH-RADIO-0001",
            licence_type="radio_station",
            holder_name=RADIO["applicant_name"],  # type: ignore[arg-type]
            holder_uscc=uscc,
            status="valid",
            application_id=uuid.UUID(app_id),
            occurred_at=datetime(2021, 9, 24, 2, 0, tzinfo=UTC),
        ),
    )
    # Only license speaks for license: notify's token cannot stop the clock with its event.
    forged = await client.post(
        "/api/v1/events",
        content=issued.model_dump_json(),
        headers={**tokens.service("notify"), "content-type": CLOUDEVENTS_JSON},
    )
    assert forged.status_code == 403 and problem(forged)["code"] == "event_producer_mismatch"
    headers = {**tokens.service("license"), "content-type": CLOUDEVENTS_JSON}
    for expected in ({"processed": 1, "duplicates": 0}, {"processed": 0, "duplicates": 1}):
        response = await client.post(
            "/api/v1/events", content=issued.model_dump_json(), headers=headers
        )
        assert response.status_code == 200, response.text
        assert {k: response.json()[k] for k in expected} == expected
    set_today("2021-09-27")
    delivery = (await _clocks(client, app_id, tokens.enterprise(uscc)))["delivery"]
    assert (delivery["running"], delivery["stop_reason"]) == (False, "delivered")
    assert (delivery["stopped_on"], delivery["used_days"], delivery["state"]) == (
        "2021-09-24",
        4,
        "green",
    )
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=approver)).json()
    assert [e["action"] for e in trail][-1] == "licence_issued"
    assert trail[-1]["details"]["licence_no"] == "SH-RADIO-0001"


async def test_a_change_is_delivered_by_licence_changed_and_a_cancellation_runs_no_clock(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 44's ten days run for the certificate an approval issues: a changed licence stops
    them as a new one does; a 注销 issues none, so no delivery clock turns overdue for it."""
    set_today("2021-09-17")
    approver = tokens.staff(Role.APPROVER)
    decided: dict[str, str] = {}
    for business_type in ("change", "cancel"):
        uscc = random_uscc()
        app_id = await _submit(client, tokens, uscc, business_type=business_type)
        await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
        await _act(client, app_id, "review", approver, opinion="同意")
        await _act(client, app_id, "approve", approver, opinion="准予")
        decided[business_type] = app_id
        clocks = await _clocks(client, app_id, tokens.enterprise(uscc))
        assert ("delivery" in clocks) is (business_type == "change"), business_type
    app_id = decided["change"]
    changed = make_event(
        type=EventType.LICENCE_CHANGED,
        source="/services/license",
        subject="SH-RADIO-0002",
        data=LicenceEventData(
            licence_id=uuid.uuid4(),
            licence_no="SH-RADIO-0002",
            licence_type="radio_station",
            holder_name=RADIO["applicant_name"],  # type: ignore[arg-type]
            holder_uscc=random_uscc(),
            status="valid",
            application_id=uuid.UUID(app_id),
            occurred_at=datetime(2021, 9, 24, 2, 0, tzinfo=UTC),
        ),
    )
    headers = {**tokens.service("license"), "content-type": CLOUDEVENTS_JSON}
    response = await client.post(
        "/api/v1/events", content=changed.model_dump_json(), headers=headers
    )
    assert response.status_code == 200 and response.json()["processed"] == 1, response.text
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=approver)).json()
    assert [e["action"] for e in trail][-1] == "licence_changed"
    set_today("2021-09-27")
    application = (await client.get(f"/api/v1/applications/{app_id}", headers=approver)).json()
    delivery = (await _clocks(client, app_id, tokens.enterprise(application["applicant_uscc"])))[
        "delivery"
    ]
    assert (delivery["running"], delivery["stop_reason"]) == (False, "delivered")


async def test_proof_of_service_joins_the_history_once(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    delivered = _proof_of_service(app_id, uscc, at=datetime(2021, 9, 18, 1, 0, tzinfo=UTC))
    headers = {**tokens.service("notify"), "content-type": CLOUDEVENTS_JSON}
    for _ in range(2):  # the same event twice
        response = await client.post("/api/v1/events", content=delivered, headers=headers)
        assert response.status_code == 200, response.text
    trail = (
        await client.get(f"/api/v1/applications/{app_id}/events", headers=tokens.enterprise(uscc))
    ).json()
    served = [e for e in trail if e["action"] == "notice_served"]
    assert len(served) == 1
    assert served[0]["details"]["cause_event_type"] == "cn.gov.approval.application.accepted.v1"
    assert served[0]["from_state"] == served[0]["to_state"] == "accepted"
    verified = await client.get(
        f"/api/v1/applications/{app_id}/events/verify", headers=tokens.enterprise(uscc)
    )
    assert verified.json()["valid"] is True


async def test_a_local_closure_moves_open_deadlines_and_reopening_moves_them_back(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    uscc = random_uscc()
    set_today("2021-03-01")  # a Monday
    app_id = await _submit(client, tokens, uscc)
    before = (await _clocks(client, app_id, tokens.enterprise(uscc)))["acceptance"]
    assert before["due_on"] == "2021-03-08"
    admin = tokens.staff(Role.ADMIN)
    closed = await client.post(
        "/api/v1/calendar/closures",
        json={"jurisdiction": "310000", "dates": ["2021-03-04"], "reason": "系统迁移停止办公"},
        headers=admin,
    )
    assert closed.status_code == 201, closed.text
    assert closed.json()["moved_deadlines"] >= 1
    after = (await _clocks(client, app_id, tokens.enterprise(uscc)))["acceptance"]
    assert after["due_on"] == "2021-03-09"
    queue = await client.get(
        "/api/v1/staff/applications", params={"q": uscc}, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert queue.json()["items"][0]["due_on"] == "2021-03-09"
    events = await _events(session, app_id, EventType.APPLICATION_CLOCK_WARNING)
    assert any('"new_due_on":"2021-03-09"' in e.replace(" ", "") for e in events)
    reopened = await client.delete("/api/v1/calendar/closures/310000/2021-03-04", headers=admin)
    assert reopened.status_code == 204
    back = (await _clocks(client, app_id, tokens.enterprise(uscc)))["acceptance"]
    assert back["due_on"] == "2021-03-08"


async def test_an_acceptance_counts_the_closures_in_force_when_it_is_taken(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Cases accepted the same day get the same decision clock, unless a closure of their
    jurisdiction was declared in between: then the later one's runs a working day longer, and
    once the closure is withdrawn the next one's is as before (a decision clock derived once is
    reused only under the same closures)."""
    set_today("2021-03-01")  # a Monday
    admin, acceptor = tokens.staff(Role.ADMIN), tokens.staff(Role.ACCEPTOR)

    async def accepted_due() -> str:
        uscc = random_uscc()
        app_id = await _submit(client, tokens, uscc)
        await _act(client, app_id, "accept", acceptor, **tolerate())
        return str((await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]["due_on"])

    before = await accepted_due()
    closed = await client.post(
        "/api/v1/calendar/closures",
        json={"jurisdiction": "310000", "dates": ["2021-03-10"], "reason": "系统迁移停止办公"},
        headers=admin,
    )
    assert closed.status_code == 201, closed.text
    during = await accepted_due()
    assert D(during) > D(before)
    reopened = await client.delete("/api/v1/calendar/closures/310000/2021-03-10", headers=admin)
    assert reopened.status_code == 204
    assert await accepted_due() == before


def _proof_of_service(app_id: str, uscc: str, *, at: datetime | None = None) -> str:
    """notify's proof that the acceptance notice reached the applicant (``at``, or now), as a
    CloudEvent body."""
    return make_event(
        type=EventType.NOTIFICATION_DELIVERED,
        source="/services/notify",
        subject=app_id,
        data=NotificationDeliveredData(
            notification_id=uuid.uuid4(),
            cause_event_id=str(uuid.uuid4()),
            cause_event_type=EventType.APPLICATION_ACCEPTED.value,
            subject=app_id,
            channel="inbox",
            recipient=uscc,
            delivered_at=at or datetime.now(UTC),
        ),
    ).model_dump_json()


async def test_proof_of_service_racing_a_staff_action_keeps_one_chain(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    import asyncio

    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    headers = {**tokens.service("notify"), "content-type": CLOUDEVENTS_JSON}

    results = await asyncio.gather(
        client.post("/api/v1/events", content=_proof_of_service(app_id, uscc), headers=headers),
        client.post(
            f"/api/v1/applications/{app_id}/review",
            json={"opinion": "同意"},
            headers=tokens.staff(Role.REVIEWER),
        ),
        client.post("/api/v1/events", content=_proof_of_service(app_id, uscc), headers=headers),
    )
    assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
    trail = (
        await client.get(f"/api/v1/applications/{app_id}/events", headers=tokens.enterprise(uscc))
    ).json()
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))
    assert sorted(e["action"] for e in trail[2:]) == ["notice_served", "notice_served", "review"]
    verified = await client.get(
        f"/api/v1/applications/{app_id}/events/verify", headers=tokens.enterprise(uscc)
    )
    assert verified.json()["valid"] is True


async def test_a_proof_of_service_between_an_actions_read_and_write_leaves_both_in_the_chain(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review reads the application and the trail's end; before it writes, notify's proof of
    service takes the next entry's number. The review is read and taken again: both entries
    stand, in one valid chain, and the reviewer gets 200, not a 409."""
    uscc = random_uscc()
    app_id = await _submit(client, tokens, uscc)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    headers = {**tokens.service("notify"), "content-type": CLOUDEVENTS_JSON}
    proof = _proof_of_service(app_id, uscc)
    reads: list[int] = []
    read = actions.read_for_action
    on_postgresql = app.state.engine.dialect.name == "postgresql"

    async def read_then_served(*args: Any, **kwargs: Any) -> ActionRead:
        found = await read(*args, **kwargs)
        reads.append(found.trail_end[0])
        # On SQLite the review holds the database's write lock from its first read: nothing can
        # come between (the proof would wait for it), so the race is PostgreSQL's alone.
        if on_postgresql and len(reads) == 1:
            served = await client.post("/api/v1/events", content=proof, headers=headers)
            assert served.status_code == 200, served.text
        return found

    monkeypatch.setattr(actions, "read_for_action", read_then_served)
    await _act(client, app_id, "review", tokens.staff(Role.REVIEWER), opinion="同意")  # 200
    monkeypatch.undo()
    trail = (
        await client.get(f"/api/v1/applications/{app_id}/events", headers=tokens.enterprise(uscc))
    ).json()
    if on_postgresql:
        assert reads == [2, 3]  # read again after the proof took entry 3
        assert [e["action"] for e in trail] == ["submit", "accept", "notice_served", "review"]
    else:
        assert reads == [2]
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))
    verified = await client.get(
        f"/api/v1/applications/{app_id}/events/verify", headers=tokens.enterprise(uscc)
    )
    assert verified.json()["valid"] is True


async def test_a_cases_clocks_ledger_and_closures_read_together_are_those_read_apart(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    """The one statement of the lifecycle actions (clocks locked, their ledger as JSON, the
    closures of the case's jurisdiction chain), alone and as part of an action's first read (with
    the application and its trail), gives the rows, types and days the separate reads give, pauses,
    resumes and an extension in the ledger, and nothing of another case."""
    uscc = random_uscc()
    set_today("2021-09-17")
    other = await _submit(client, tokens, random_uscc())
    await _act(client, other, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    app_id = await _submit(client, tokens, uscc)
    reviewer = tokens.staff(Role.REVIEWER)
    await _act(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    await _act(client, app_id, "review", reviewer, opinion="材料齐全")
    await _act(client, app_id, "pause", reviewer, pause_reason="expert_review", expected_days=5)
    set_today("2021-09-29")
    await _act(client, app_id, "resume", reviewer, reason="专家评审意见已收到")
    await _act(
        client, app_id, "extend", tokens.staff(Role.HEAD), extension_days=10, reason="情况复杂"
    )
    closed = await client.post(
        "/api/v1/calendar/closures",
        json={"jurisdiction": "310000", "dates": ["2021-10-20"], "reason": "系统迁移停止办公"},
        headers=tokens.staff(Role.ADMIN),
    )
    assert closed.status_code == 201, closed.text
    repository = ClockRepository(session)
    case = uuid.UUID(app_id)
    clocks, ledger, closures = await repository.locked_with_ledger(
        case, jurisdiction="310000", years=(2020, 2023)
    )
    apart = (await repository.for_application(case), await repository.ledger(case))

    def columns(rows: Sequence[object]) -> list[dict[str, object]]:
        return [
            {c.key: getattr(row, c.key) for c in row.__table__.columns}  # type: ignore[attr-defined]
            for row in rows
        ]

    assert len(ledger) == 3
    assert (columns(clocks), columns(ledger)) == (columns(apart[0]), columns(apart[1]))
    assert closures is None or closures == [D("2021-10-20")]
    read = await read_for_action(session, case, with_materials=True, clock_years=(2020, 2023))
    assert read.application is not None and read.application.id == case
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=reviewer)).json()
    assert read.trail_end[0] == trail[-1]["seq"] == 6
    if read.clocks is not None:  # PostgreSQL (SQLite reads them in the clock keeper)
        together, entries, days = read.clocks
        assert [c.kind for c in together] == ["acceptance", "decision"]
        assert (columns(together), columns(entries)) == (columns(apart[0]), columns(apart[1]))
        assert days == [D("2021-10-20")]
    await session.rollback()


async def test_clocks_as_of_outside_the_calendar_is_a_problem_not_a_crash(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """``as_of`` beyond the calendar's years is refused at once (422), never derived: 9999-12-31
    overflowed the date arithmetic (500), 9999-10-01 counted millions of days on the event loop."""
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)  # its acceptance clock is running
    applicant = tokens.enterprise(uscc)
    for as_of in ("9999-12-31", "9999-10-01", "2101-01-01", "2003-12-31", "0001-01-01"):
        response = await client.get(
            f"/api/v1/applications/{app_id}/clocks", params={"as_of": as_of}, headers=applicant
        )
        assert response.status_code == 422, (as_of, response.text)
        body = problem(response)
        assert body["code"] == "calendar_year_out_of_range", as_of
        assert body["title_en"] and body["title"]
    # Within the calendar's years but decades from the submission: the clocks would be counted
    # day by day up to it (half a second a request), so that is refused too.
    far = await client.get(
        f"/api/v1/applications/{app_id}/clocks", params={"as_of": "2100-12-31"}, headers=applicant
    )
    assert far.status_code == 422 and problem(far)["code"] == "calendar_range_too_long", far.text
    # the calendar's own years are still answered
    assert (await _clocks(client, app_id, applicant, as_of="2021-09-22"))["acceptance"][
        "running"
    ] is True
