"""The Administrative Licensing Law, rule by rule, through the REST API on PostgreSQL and SQLite.

Each test names the article it holds the suite to. Dates are in 2021, whose official calendar
(中秋 09-19..21, Saturday 09-18 and Sunday 09-26 worked, 国庆 10-01..07, Saturday 10-09 worked) is
seeded; the expected dates below were counted by hand from that published schedule.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.demo import required_materials
from approval.context import context_of
from approval.db import outbox_events
from approval.worker import TimerWorker
from govshared.auth import Role
from govshared.db import mark_read_only
from govshared.events import EventType
from govshared.testing import Tokens, blank_pdf, problem, random_uscc

RADIO = "JXW-XK-003"  # 无线电台（站）设置审批: statutory 20, committed 15 working days
EXPLOSIVES = "JXW-XK-006"  # 民用爆炸物品生产许可: handled jointly (联合办理), 45 working days
FORMS: dict[str, dict[str, Any]] = {RADIO: {"station_type": "固定台站"}, EXPLOSIVES: {}}
PDF = blank_pdf()
D = date.fromisoformat


@pytest.fixture
def set_today(app: FastAPI) -> Iterator[Callable[[str], None]]:
    """Set the service's China date; restored after the test."""
    today = context_of(app).today

    def setter(day: str) -> None:
        today.pin(D(day))

    yield setter
    today.pin(None)


def tolerate(item_code: str = RADIO, deliver_by: str = "2099-12-31") -> dict[str, Any]:
    """容缺受理 of every material the item's guide requires."""
    return {"tolerated_materials": required_materials(item_code), "deliver_by": deliver_by}


async def _submit(client: httpx.AsyncClient, tokens: Tokens, uscc: str, item: str = RADIO) -> str:
    response = await client.post(
        "/api/v1/applications",
        json={"item_code": item, "applicant_name": "上海依法示范有限公司", "form": FORMS[item]},
        headers=tokens.enterprise(uscc),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _act(
    client: httpx.AsyncClient, app_id: str, path: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(f"/api/v1/applications/{app_id}/{path}", json=body, headers=headers)


async def _ok(
    client: httpx.AsyncClient, app_id: str, path: str, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await _act(client, app_id, path, headers, **body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _upload(
    client: httpx.AsyncClient, app_id: str, name: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/applications/{app_id}/materials",
        data={"name": name},
        files={"file": ("m.pdf", PDF, "application/pdf")},
        headers=headers,
    )


async def _clocks(
    client: httpx.AsyncClient, app_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/applications/{app_id}/clocks", headers=headers)
    assert response.status_code == 200, response.text
    body = dict(response.json())
    body["by_kind"] = {c["kind"]: c for c in body["clocks"]}
    return body


async def _trail(
    client: httpx.AsyncClient, app_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/applications/{app_id}/events", headers=headers)
    return list(response.json())


async def _document(
    client: httpx.AsyncClient, app_id: str, kind: str, headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/applications/{app_id}/documents", headers=headers)
    assert response.status_code == 200, response.text
    (document,) = [d for d in response.json()["items"] if d["kind"] == kind]
    return dict(document["content"])


async def _queue(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str, state: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/staff/applications",
        params={"q": uscc, "state": state},
        headers=tokens.staff(Role.ACCEPTOR),
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_art32_deemed_acceptance_holds_before_the_timer_runs(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 32: past the 5 working days the application IS accepted as of the day it arrived."""
    uscc = random_uscc()
    applicant, acceptor = tokens.enterprise(uscc), tokens.staff(Role.ACCEPTOR)
    set_today("2021-09-17")  # acceptance due 2021-09-26 (a 调休 Sunday)
    app_id = await _submit(client, tokens, uscc)
    set_today("2021-09-26")  # the last day is still the authority's
    detail = (await client.get(f"/api/v1/applications/{app_id}", headers=applicant)).json()
    assert detail["state"] == "submitted"
    assert [a["id"] for a in await _queue(client, tokens, uscc, "submitted")] == [app_id]

    set_today("2021-09-27")  # no timer has run
    detail = (await client.get(f"/api/v1/applications/{app_id}", headers=applicant)).json()
    # decided within 20 working days from 09-17: 09-18, 22-24, 26-30, 10-08, 09, 11-15, 18-21
    assert (detail["state"], detail["due_on"]) == ("accepted", "2021-10-21")
    clocks = await _clocks(client, app_id, applicant)
    assert clocks["deemed_accepted"] is True and clocks["accepted_on"] == "2021-09-17"
    acceptance, decision = clocks["by_kind"]["acceptance"], clocks["by_kind"]["decision"]
    assert (acceptance["running"], acceptance["stop_reason"], acceptance["stopped_on"]) == (
        False,
        "deemed_accepted",
        "2021-09-27",
    )
    assert (decision["started_on"], decision["due_on"], decision["running"]) == (
        "2021-09-17",
        "2021-10-21",
        True,
    )
    assert [a["id"] for a in await _queue(client, tokens, uscc, "accepted")] == [app_id]
    assert await _queue(client, tokens, uscc, "submitted") == []
    listed = (await client.get("/api/v1/applications", headers=applicant)).json()["items"]
    assert [a["state"] for a in listed if a["id"] == app_id] == ["accepted"]

    # 补正, refusal and a late acceptance are refused: the case is accepted by law
    for path, body in (
        ("supplement-request", {"missing_items": ["设备型号核准证明"]}),
        ("reject", {"reject_reason": "outside_jurisdiction", "reason": "属区级事权"}),
        ("accept", tolerate()),
    ):
        refused = problem(await _act(client, app_id, path, acceptor, **body))
        assert (refused["status"], refused["code"]) == (409, "deemed_accepted"), path
        assert refused["accepted_on"] == "2021-09-17"

    # the timer records what the law already says, and every reader still agrees
    timers: TimerWorker = context_of(app).timers
    assert (await timers.run_once(today=D("2021-09-27"))).deemed_accepted >= 1
    assert await _clocks(client, app_id, applicant) == clocks
    again = (await client.get(f"/api/v1/applications/{app_id}", headers=applicant)).json()
    assert (again["state"], again["due_on"]) == ("accepted", "2021-10-21")
    refused = problem(
        await _act(client, app_id, "supplement-request", acceptor, missing_items=["x"])
    )
    assert refused["code"] == "deemed_accepted"
    deemed = [e for e in await _trail(client, app_id, applicant) if e["action"] == "deemed_accept"]
    assert len(deemed) == 1 and deemed[0]["details"]["accepted_on"] == "2021-09-17"


async def test_art32_queue_pages_stay_whole_while_a_deemed_case_waits_for_the_timer(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 32: the queue's keyset stays on the stored order; every case is seen exactly once."""
    uscc = random_uscc()
    set_today("2021-09-10")  # acceptance due 2021-09-17
    deemed = await _submit(client, tokens, uscc)
    set_today("2021-09-17")  # due 2021-09-26
    waiting = await _submit(client, tokens, uscc)
    accepted = await _submit(client, tokens, uscc)
    await _ok(client, accepted, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    set_today("2021-09-22")
    seen: list[tuple[str, str, str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": uscc, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get(
                "/api/v1/staff/applications", params=params, headers=tokens.staff(Role.ACCEPTOR)
            )
        ).json()
        seen += [(a["id"], a["state"], a["due_on"]) for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # the deemed case first (its stored key: the acceptance due date that ran out), shown
    # accepted with its decision due date
    assert [s[0] for s in seen] == [deemed, waiting, accepted]
    assert seen[0][1] == "accepted" and seen[1][1] == "submitted" and seen[2][1] == "accepted"
    # 20 working days from 09-10: 09-13..17 (5), 18 (6), 22..24 (9), 26..30 (14), 10-08, 09 (16),
    # 10-11..14 (20)
    assert seen[0][2] == "2021-10-14"


async def test_art32_an_action_on_a_deemed_case_records_the_acceptance_first(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 32: a reviewer acting after the period meets an accepted case, recorded once."""
    uscc = random_uscc()
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    set_today("2021-09-28")
    reviewed = await _ok(client, app_id, "review", tokens.staff(Role.REVIEWER), opinion="符合")
    assert reviewed["state"] == "in_review"
    trail = await _trail(client, app_id, tokens.enterprise(uscc))
    assert [e["action"] for e in trail] == ["submit", "deemed_accept", "review"]
    assert trail[1]["actor_role"] == "service"
    verified = await client.get(
        f"/api/v1/applications/{app_id}/events/verify", headers=tokens.enterprise(uscc)
    )
    assert verified.json()["valid"] is True


async def test_art32_no_acceptance_while_required_materials_are_missing(
    client: httpx.AsyncClient, tokens: Tokens, held_licences: dict[str, list[str]]
) -> None:
    """Art. 32(1)(5): materials complete (uploaded or from a held e-licence) before 受理."""
    uscc = random_uscc()
    applicant, acceptor = tokens.enterprise(uscc), tokens.staff(Role.ACCEPTOR)
    app_id = await _submit(client, tokens, uscc)
    refused = problem(await _act(client, app_id, "accept", acceptor))
    assert (refused["status"], refused["code"]) == (409, "materials_incomplete")
    assert refused["missing_materials"] == required_materials(RADIO)

    held_licences[uscc] = ["radio_frequency_licence"]
    from_licence = await client.post(
        f"/api/v1/applications/{app_id}/materials/from-licence",
        json={"name": "无线电频率使用许可证"},
        headers=applicant,
    )
    assert from_licence.status_code == 201, from_licence.text
    for name in ("无线电台（站）设置申请表", "设备型号核准证明"):
        assert (await _upload(client, app_id, name, applicant)).status_code == 201
    accepted = await _ok(client, app_id, "accept", acceptor)
    assert accepted["state"] == "accepted"
    (entry,) = [e for e in await _trail(client, app_id, applicant) if e["action"] == "accept"]
    assert entry["details"]["materials"] == "complete"
    notice = await _document(client, app_id, "acceptance", applicant)
    assert "申请材料齐全" in notice["paragraphs"][0] and "容缺" not in "".join(notice["paragraphs"])


async def test_art32_tolerated_acceptance_is_recorded_noticed_and_followed_up(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    """容缺受理: staff name the missing items and a date; notice, trail and follow-up say so."""
    uscc = random_uscc()
    applicant, acceptor = tokens.enterprise(uscc), tokens.staff(Role.ACCEPTOR)
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    for name in ("无线电台（站）设置申请表", "无线电频率使用许可证"):
        assert (await _upload(client, app_id, name, applicant)).status_code == 201
    missing = "设备型号核准证明"
    wrong = [
        {"tolerated_materials": required_materials(RADIO), "deliver_by": "2021-10-15"},
        {"tolerated_materials": [missing]},
        {"tolerated_materials": [missing], "deliver_by": "2021-09-17"},
    ]
    for body in wrong:
        answer = problem(await _act(client, app_id, "accept", acceptor, **body))
        assert (answer["status"], answer["code"]) == (422, "action_input_invalid"), body
    accepted = await _ok(
        client, app_id, "accept", acceptor, tolerated_materials=[missing], deliver_by="2021-09-24"
    )
    assert accepted["state"] == "accepted"
    (entry,) = [e for e in await _trail(client, app_id, applicant) if e["action"] == "accept"]
    assert entry["details"]["materials"] == "tolerated"
    assert entry["details"]["tolerated_materials"] == [missing]
    assert entry["details"]["deliver_by"] == "2021-09-24"
    notice = await _document(client, app_id, "acceptance", applicant)
    text = "".join(notice["paragraphs"])
    assert "容缺受理" in text and missing in text and "2021年9月24日前补交" in text
    assert "申请材料齐全" not in text

    checklist = (
        await client.get(f"/api/v1/applications/{app_id}/materials", headers=applicant)
    ).json()
    assert [(t["name"], t["delivered_at"]) for t in checklist["tolerated"]] == [(missing, None)]
    set_today("2021-09-27")  # past the date: staff see it overdue, and one event is raised
    follow_ups = (
        await client.get(
            "/api/v1/staff/tolerated-materials", params={"overdue": True}, headers=acceptor
        )
    ).json()
    mine = [f for f in follow_ups if f["application_id"] == app_id]
    assert [(f["name"], f["deliver_by"], f["overdue"]) for f in mine] == [
        (missing, "2021-09-24", True)
    ]
    timers: TimerWorker = context_of(app).timers
    await timers.run_once(today=D("2021-09-27"))
    await timers.run_once(today=D("2021-09-28"))
    await session.rollback()
    await mark_read_only(session)
    events = list(
        (
            await session.execute(
                select(outbox_events.c.payload).where(
                    outbox_events.c.event_type == str(EventType.APPLICATION_CLOCK_OVERDUE),
                    outbox_events.c.destination == "notify",
                    outbox_events.c.payload.contains(app_id),
                )
            )
        ).scalars()
    )
    assert len(events) == 1 and "tolerated_material" in str(events[0])

    # the applicant delivers after acceptance: recorded, in the trail, no longer awaited
    assert (await _upload(client, app_id, missing, applicant)).status_code == 201
    checklist = (
        await client.get(f"/api/v1/applications/{app_id}/materials", headers=applicant)
    ).json()
    assert checklist["tolerated"][0]["delivered_at"] is not None
    trail = await _trail(client, app_id, applicant)
    assert trail[-1]["action"] == "tolerated_material_delivered"
    assert trail[-1]["details"]["material"] == missing
    follow_ups = (await client.get("/api/v1/staff/tolerated-materials", headers=acceptor)).json()
    assert all(f["application_id"] != app_id for f in follow_ups)
    # anything else after acceptance is still refused
    late = await _upload(client, app_id, "无线电台（站）设置申请表", applicant)
    assert problem(late)["code"] == "illegal_transition"


async def test_art38_no_decision_without_a_review_and_resume_returns(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Arts. 34, 38, 45: a decision needs a recorded review; a pause returns where it began."""
    app_id = await _submit(client, tokens, random_uscc())
    reviewer, approver = tokens.staff(Role.REVIEWER), tokens.staff(Role.APPROVER)
    await _ok(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    for path, body in (("approve", {"opinion": "同意"}), ("deny", {"reason": "不符合"})):
        refused = problem(await _act(client, app_id, path, approver, **body))
        assert (refused["status"], refused["code"]) == (409, "review_required")
    await _ok(client, app_id, "pause", reviewer, pause_reason="expert_review", expected_days=3)
    assert (await _ok(client, app_id, "resume", reviewer))["state"] == "accepted"
    assert problem(await _act(client, app_id, "approve", approver))["code"] == "review_required"
    no_opinion = problem(await _act(client, app_id, "review", reviewer))
    assert no_opinion["code"] == "action_input_invalid"
    assert (await _ok(client, app_id, "review", reviewer, opinion="材料真实"))["state"] == (
        "in_review"
    )
    await _ok(client, app_id, "pause", reviewer, pause_reason="testing", expected_days=3)
    assert (await _ok(client, app_id, "resume", reviewer))["state"] == "in_review"
    assert (await _ok(client, app_id, "approve", approver, opinion="同意"))["state"] == "approved"


async def test_art45_pause_notice_states_the_expected_time_and_its_end(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 45: the time the procedure needs is told in writing: days and the day it ends."""
    uscc = random_uscc()
    applicant, reviewer = tokens.enterprise(uscc), tokens.staff(Role.REVIEWER)
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _ok(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    set_today("2021-09-22")
    # 5 working days from 09-22: 09-23, 24, Sunday 26 (调休 worked), 27, 28
    await _ok(client, app_id, "pause", reviewer, pause_reason="expert_review", expected_days=5)
    (entry,) = [e for e in await _trail(client, app_id, applicant) if e["action"] == "pause"]
    assert entry["details"]["expected_days"] == 5
    assert entry["details"]["expected_end_on"] == "2021-09-28"
    notice = await _document(client, app_id, "pause", applicant)
    text = "".join(notice["paragraphs"])
    assert "第四十五条" in text and "专家评审" in text
    assert "预计所需时间为5个工作日" in text and "2021年9月28日" in text
    decision = (await _clocks(client, app_id, applicant))["by_kind"]["decision"]
    assert decision["is_paused"] is True and decision["pause_expected_days"] == 5


async def test_a_case_denied_owes_its_tolerated_materials_no_more(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    """容缺受理's follow-up ends with the case: a denied (or withdrawn, refused) case raises no
    overdue event for its material, is off the staff's follow-up list, and takes no upload."""
    uscc = random_uscc()
    applicant, acceptor = tokens.enterprise(uscc), tokens.staff(Role.ACCEPTOR)
    approver = tokens.staff(Role.APPROVER)
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    missing = required_materials(RADIO)[0]
    await _ok(client, app_id, "accept", acceptor, **tolerate(deliver_by="2021-09-24"))
    await _ok(client, app_id, "review", tokens.staff(Role.REVIEWER), opinion="不符合条件")
    await _ok(client, app_id, "deny", approver, reason="不符合许可条件")
    set_today("2021-09-27")
    timers: TimerWorker = context_of(app).timers
    await timers.run_once(today=D("2021-09-27"))
    await session.rollback()
    await mark_read_only(session)
    overdue = (
        await session.execute(
            select(outbox_events.c.payload).where(
                outbox_events.c.event_type == str(EventType.APPLICATION_CLOCK_OVERDUE),
                outbox_events.c.payload.contains(app_id),
            )
        )
    ).all()
    assert overdue == []
    follow_ups = (await client.get("/api/v1/staff/tolerated-materials", headers=acceptor)).json()
    assert all(f["application_id"] != app_id for f in follow_ups)
    refused = await _upload(client, app_id, missing, applicant)
    assert refused.status_code == 409, refused.text


async def test_art42_2_joint_handling_45_days_extended_by_the_government_head(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 42(2): 45 working days; one extension of up to 15, by the people's government head."""
    item = (await client.get(f"/api/v1/items/{EXPLOSIVES}")).json()
    assert item["guide"]["joint_handling"] == "joint" and item["statutory_limit_days"] == 45
    uscc = random_uscc()
    applicant = tokens.enterprise(uscc)
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc, EXPLOSIVES)
    await _ok(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate(EXPLOSIVES))
    # 45 working days from 09-17: 09-18 (1) … 10-08 (10), 10-09 (11) … 11-22..25 (42-45)
    decision = (await _clocks(client, app_id, applicant))["by_kind"]["decision"]
    assert (decision["budget_days"], decision["due_on"]) == (45, "2021-11-25")
    assert decision["extension_limit_days"] == 15
    notice = "".join((await _document(client, app_id, "acceptance", applicant))["paragraphs"])
    assert "45个工作日内" in notice and "联合办理" in notice and "第四十二条第二款" in notice

    set_today("2021-10-08")
    head = tokens.staff(Role.HEAD)
    government_head = tokens.staff(Role.GOVERNMENT_HEAD)
    assert (
        await _act(client, app_id, "extend", head, extension_days=10, reason="多部门会签")
    ).status_code == 403
    too_long = await _act(
        client, app_id, "extend", government_head, extension_days=16, reason="多部门会签"
    )
    assert problem(too_long)["status"] == 422
    await _ok(client, app_id, "extend", government_head, extension_days=15, reason="多部门会签")
    decision = (await _clocks(client, app_id, applicant))["by_kind"]["decision"]
    # 15 more: 11-26, 11-29..12-03, 12-06..10, 12-13..16
    assert (decision["extension_days"], decision["due_on"]) == (15, "2021-12-16")

    # an item not handled jointly: Art. 42(1), the authority's head, ten days at most
    other = await _submit(client, tokens, random_uscc())
    await _ok(client, other, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())
    assert (
        await _act(client, other, "extend", government_head, extension_days=5, reason="复杂")
    ).status_code == 403
    refused = problem(await _act(client, other, "extend", head, extension_days=15, reason="复杂"))
    assert (refused["code"], refused["max_extension_days"]) == ("extension_too_long", 10)


ITEM_FIELDS = (
    "name",
    "item_type",
    "authority",
    "jurisdiction",
    "is_instant",
    "statutory_limit_days",
    "committed_limit_days",
    "reform_mode",
    "guide",
)


async def _filed_under_a_radio_copy(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str
) -> tuple[str, str]:
    """A new item with the radio licence's guide, published; an application filed under it."""
    radio = (await client.get(f"/api/v1/items/{RADIO}")).json()
    code = f"LAW-{uuid.uuid4().hex[:8].upper()}"
    admin = tokens.header(Role.ADMIN)
    draft = {**{k: radio[k] for k in ITEM_FIELDS}, "code": code}
    assert (await client.post("/api/v1/items", json=draft, headers=admin)).status_code == 201
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200
    submitted = await client.post(
        "/api/v1/applications",
        json={"item_code": code, "applicant_name": "上海依法示范有限公司", "form": FORMS[RADIO]},
        headers=tokens.enterprise(uscc),
    )
    assert submitted.status_code == 201, submitted.text
    return code, str(submitted.json()["id"])


async def _revise(
    client: httpx.AsyncClient, tokens: Tokens, code: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Publish the item's next version with ``change`` applied to its guide."""
    admin = tokens.header(Role.ADMIN)
    current = (await client.get(f"/api/v1/items/{code}")).json()
    draft = copy.deepcopy({k: current[k] for k in ITEM_FIELDS})
    change(draft)
    draft["change_note"] = "修订办事指南"
    put = await client.put(f"/api/v1/items/{code}/draft", json=draft, headers=admin)
    assert put.status_code == 200, put.text
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200


async def test_art34_a_revision_making_the_item_instant_does_not_decide_cases_filed_before(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """即办件 is a property of the guide a case was filed under: a case filed for review is not
    decided on the spot because the guide was revised since."""
    set_today("2021-09-17")
    code, app_id = await _filed_under_a_radio_copy(client, tokens, random_uscc())

    def instant(draft: dict[str, Any]) -> None:
        draft["is_instant"] = True

    await _revise(client, tokens, code, instant)
    assert (await client.get(f"/api/v1/items/{code}")).json()["is_instant"] is True
    refused = await _act(client, app_id, "instant-decision", tokens.staff(Role.ACCEPTOR))
    assert problem(refused)["code"] == "not_instant_item", refused.text


async def test_art42_a_case_keeps_the_decision_terms_of_the_guide_it_was_filed_under(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """A guide revised after filing (here: now handled jointly, 45 days) changes neither the
    case's decision limit nor who may extend it: the applicant relied on the guide it applied
    under, which the application keeps (its ``item_version``)."""
    uscc = random_uscc()
    set_today("2021-09-17")
    code, app_id = await _filed_under_a_radio_copy(client, tokens, uscc)
    await _ok(client, app_id, "accept", tokens.staff(Role.ACCEPTOR), **tolerate())

    def joint(draft: dict[str, Any]) -> None:
        draft["guide"]["joint_handling"] = "joint"
        draft["statutory_limit_days"] = 45

    await _revise(client, tokens, code, joint)
    assert (await client.get(f"/api/v1/items/{code}")).json()["guide"]["joint_handling"] == "joint"

    set_today("2021-10-08")
    # Art. 42(1), as filed: the authority's head extends, by ten days at most.
    government_head = tokens.staff(Role.GOVERNMENT_HEAD)
    assert (
        await _act(client, app_id, "extend", government_head, extension_days=5, reason="复杂")
    ).status_code == 403
    refused = problem(
        await _act(
            client, app_id, "extend", tokens.staff(Role.HEAD), extension_days=15, reason="复杂"
        )
    )
    assert (refused["code"], refused["max_extension_days"]) == ("extension_too_long", 10)
    await _ok(client, app_id, "extend", tokens.staff(Role.HEAD), extension_days=5, reason="复杂")
    decision = (await _clocks(client, app_id, tokens.enterprise(uscc)))["by_kind"]["decision"]
    assert (decision["budget_days"], decision["extension_days"]) == (20, 5)


async def test_art32_1_5_after_supplement_the_clock_counts_from_the_complete_supplement(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 32(1)(5): accepted as of the day all the requested materials arrived, as noticed."""
    uscc = random_uscc()
    applicant, acceptor = tokens.enterprise(uscc), tokens.staff(Role.ACCEPTOR)
    set_today("2021-09-17")
    app_id = await _submit(client, tokens, uscc)
    await _ok(client, app_id, "supplement-request", acceptor, missing_items=["设备型号核准证明"])
    promise = "".join((await _document(client, app_id, "supplement", applicant))["paragraphs"])
    assert "自收到全部补正材料之日起受理" in promise and "期限自该日起计算" in promise
    set_today("2021-09-22")
    for name in required_materials(RADIO):
        assert (await _upload(client, app_id, name, applicant)).status_code == 201
    await _ok(client, app_id, "supplement", applicant, changed_materials=["设备型号核准证明"])
    set_today("2021-09-24")  # staff confirm two working days later
    await _ok(client, app_id, "accept", acceptor)
    clocks = await _clocks(client, app_id, applicant)
    decision = clocks["by_kind"]["decision"]
    # 20 working days from 09-22: 09-23, 24, 26..30 (7), 10-08, 09 (9), 10-11..15, 18..22, 25
    assert clocks["accepted_on"] == "2021-09-22"
    assert (decision["started_on"], decision["due_on"]) == ("2021-09-22", "2021-10-25")
    notice = await _document(client, app_id, "acceptance", applicant)
    assert notice["details"]["accepted_on"] == "2021-09-22"
    assert "自收到全部补正材料之日起予以受理" in notice["paragraphs"][0]
    assert "受理日期：2021年9月22日" in notice["paragraphs"][1]
    assert "2021年10月25日前" in notice["paragraphs"][1]


def _draft(code: str, **changes: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "依法时限测试事项",
        "item_type": "行政许可",
        "authority": "上海市经济和信息化委员会",
        "jurisdiction": "310000",
        "statutory_limit_days": 20,
        "committed_limit_days": 10,
        "guide": {
            "legal_basis": [{"law": "《中华人民共和国行政许可法》", "articles": "第四十二条"}],
            "implementing_authority": "上海市经济和信息化委员会",
            "deciding_authority": "上海市经济和信息化委员会",
            "eligible_applicants": "企业",
            "conditions": {"new": "符合条件"},
            "result_type": "许可证",
            "effective_from": "2026-01-01",
            "special_steps": [],
        },
        **changes,
    }


async def test_art45_only_its_procedures_stop_the_clock_in_a_guide(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Art. 45 (and Art. 34(3)): a guide may leave out only the listed procedures' time."""
    admin = tokens.header(Role.ADMIN)
    demo = (await client.get(f"/api/v1/items/{EXPLOSIVES}")).json()["guide"]["special_steps"]
    assert [(s["name"], s["counted"]) for s in demo] == [("现场核查", True)]

    def with_steps(code: str, *steps: dict[str, Any], **changes: Any) -> dict[str, Any]:
        draft = _draft(code, **changes)
        draft["guide"] = copy.deepcopy(draft["guide"]) | {"special_steps": list(steps)}
        return draft

    def code() -> str:
        return f"LAW-{uuid.uuid4().hex[:8].upper()}"

    refused = [
        with_steps(code(), {"name": "现场核查", "counted": False, "reason": "inspection"}),
        with_steps(code(), {"name": "专家论证会", "counted": False, "reason": "demonstration"}),
    ]
    joint_too_long = _draft(code(), statutory_limit_days=60)
    joint_too_long["guide"] = {**joint_too_long["guide"], "joint_handling": "unified"}
    refused.append(joint_too_long)
    for draft in refused:
        answer = await client.post("/api/v1/items", json=draft, headers=admin)
        assert problem(answer)["status"] == 422, draft
    accepted = [
        with_steps(code(), {"name": "专家评审", "counted": False, "reason": "expert_review"}),
        with_steps(
            code(),
            {
                "name": "环境影响评价",
                "counted": False,
                "reason": "environmental_assessment",
                "statute": "《中华人民共和国环境影响评价法》第二十二条",
            },
        ),
        with_steps(code(), {"name": "现场核查", "counted": True, "reason": "第三十四条第三款"}),
    ]
    for draft in accepted:
        answer = await client.post("/api/v1/items", json=draft, headers=admin)
        assert answer.status_code == 201, answer.text


async def test_art49_the_licence_particulars_are_those_of_the_guide_the_case_was_filed_under(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    """An approval carries the form's 许可事项 to license (the guide's ``particular`` fields, under
    their labels), decided on the spot too (Art. 34(2)); a revision after filing that stops
    marking a field does not take it off the licence of a case filed before."""
    uscc = random_uscc()
    radio = (await client.get(f"/api/v1/items/{RADIO}")).json()
    code = f"LAW-{uuid.uuid4().hex[:8].upper()}"
    admin = tokens.header(Role.ADMIN)
    draft = {**{k: radio[k] for k in ITEM_FIELDS}, "code": code, "is_instant": True}
    assert (await client.post("/api/v1/items", json=draft, headers=admin)).status_code == 201
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200
    form = {"station_type": "移动台站", "antenna_height": "30米"}
    submitted = await client.post(
        "/api/v1/applications",
        json={"item_code": code, "applicant_name": "上海依法示范有限公司", "form": form},
        headers=tokens.enterprise(uscc),
    )
    assert submitted.status_code == 201, submitted.text
    app_id = str(submitted.json()["id"])

    def unmarked(draft: dict[str, Any]) -> None:
        for field in draft["guide"]["form_fields"]:
            field["particular"] = False

    await _revise(client, tokens, code, unmarked)
    for name in required_materials(RADIO):
        uploaded = await _upload(client, app_id, name, tokens.enterprise(uscc))
        assert uploaded.status_code == 201, uploaded.text
    decided = await _act(client, app_id, "instant-decision", tokens.staff(Role.ACCEPTOR))
    assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text
    expected = {"台站类型": "移动台站", "天线高度": "30米"}
    trail = (
        await client.get(f"/api/v1/applications/{app_id}/events", headers=tokens.enterprise(uscc))
    ).json()
    assert trail[-1]["details"]["particulars"] == expected
    async with context_of(app).sessionmaker() as session:
        to_license = (
            await session.scalars(
                select(outbox_events.c.payload).where(
                    outbox_events.c.event_type == str(EventType.APPLICATION_APPROVED),
                    outbox_events.c.destination == "license",
                    outbox_events.c.payload.contains(app_id),
                )
            )
        ).all()
    payloads = [json.loads(p) if isinstance(p, str | bytes) else p for p in to_license]
    assert [p["data"]["details"]["particulars"] for p in payloads] == [expected]


async def test_two_licence_particulars_may_not_share_a_label(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """A particular's label is its name on the licence: two under one label would overwrite each
    other there, so the guide is refused."""
    radio = (await client.get(f"/api/v1/items/{RADIO}")).json()
    draft = copy.deepcopy(
        {**{k: radio[k] for k in ITEM_FIELDS}, "code": f"LAW-{uuid.uuid4().hex[:8].upper()}"}
    )
    for field in draft["guide"]["form_fields"]:
        field["label"] = "台站信息"
    refused = await client.post("/api/v1/items", json=draft, headers=tokens.header(Role.ADMIN))
    assert refused.status_code == 422, refused.text
    assert "台站信息" in str(problem(refused))
    draft["guide"]["form_fields"][1]["particular"] = False  # one of them on the licence: fine
    created = await client.post("/api/v1/items", json=draft, headers=tokens.header(Role.ADMIN))
    assert created.status_code == 201, created.text
