"""双随机、一公开 through the REST API: a plan over the register draws targets and inspectors
reproducibly, results are recorded with evidence, published and notified, and a non-compliant
finding leads to a correction order, then (deadline missed) to a credit record that changes the
next draw and the 告知承诺 eligibility, and to a licence act proposed and carried out."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc
from govshared.uscc import uscc_check_char
from licensing import clock
from licensing.db import outbox_events
from licensing.inspections.draw import digest, targets_json
from licensing.inspections.plans import replay_draw
from licensing.inspections.schemas import DrawInputs
from licensing.workdays import add_working_days

FreshApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]
ALL = {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}
# What the draw read (``inputs_sha256`` is their digest); ``targets`` is what it gave.
DRAW_INPUTS = ("algorithm", "seed", "candidates", "ratios", "inspectors", "conflicts")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def individual_uscc() -> str:
    """A 个体工商户's USCC (登记管理部门 9, 机构类别 2)."""
    first17 = "92" + random_uscc()[2:17]
    return first17 + uscc_check_char(first17)


def plan_body(**overrides: Any) -> dict[str, Any]:
    today = clock.today()
    body: dict[str, Any] = {
        "name": "2026年食盐专营许可双随机抽查",
        "item_codes": ["JXW-XK-001", "JXW-XK-002"],
        "jurisdiction": "310000",
        "period_from": today.isoformat(),
        "period_to": (today + timedelta(days=90)).isoformat(),
        "ratios": ALL,
        "inspectors": ["执法人员甲", "执法人员乙", "执法人员丙"],
    }
    body.update(overrides)
    return body


async def _evidence(client: httpx.AsyncClient, inspection_id: str, headers: dict[str, str]) -> None:
    response = await client.post(
        f"/api/v1/inspections/{inspection_id}/evidence",
        files={"file": ("现场检查记录.png", PNG, "image/png")},
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def _events(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.event_type == event_type)
                .where(outbox_events.c.destination == "notify")
                .order_by(outbox_events.c.created_at, outbox_events.c.id)
            )
        ).scalars()
        return [json.loads(p)["data"] for p in payloads]


async def test_plan_draw_results_publication_and_consequences(
    fresh_app: FreshApp,
    issuer: Callable[..., Any],
    deliverer: Callable[..., Any],
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_app() as (app, client):
        issue = issuer(client, tokens, app)
        holders = [random_uscc() for _ in range(3)]
        person = individual_uscc()
        for uscc in holders:
            await issue(uscc=uscc, applicant_name=f"示范企业{uscc[-4:]}有限公司")
        await issue(uscc=person, applicant_name="张三")
        # The delegated item: licensed by 浦东新区, supervised by the city that delegated it.
        delegated = random_uscc()
        await issue(
            uscc=delegated,
            item_code="JXW-XK-001",
            jurisdiction="310115",
            applicant_name="浦东盐业有限公司",
        )
        approver = tokens.staff(Role.APPROVER, "310000")
        reviewer = tokens.staff(Role.REVIEWER, "310000")

        # A district's staff cannot plan for the city; nor may an acceptor plan at all.
        district = tokens.staff(Role.APPROVER, "310115")
        refused = await client.post("/api/v1/inspection-plans", json=plan_body(), headers=district)
        assert refused.status_code == 403 and problem(refused)["code"] == "outside_jurisdiction"
        acceptor = tokens.staff(Role.ACCEPTOR, "310000")
        refused = await client.post("/api/v1/inspection-plans", json=plan_body(), headers=acceptor)
        assert refused.status_code == 403
        # Higher risk, higher ratio.
        inverted = plan_body(ratios={"A": 0.5, "B": 0.2, "C": 0.2, "D": 0.2})
        bad = await client.post("/api/v1/inspection-plans", json=inverted, headers=approver)
        assert bad.status_code == 422
        nowhere = plan_body(jurisdiction="990000")
        bad = await client.post("/api/v1/inspection-plans", json=nowhere, headers=approver)
        assert bad.status_code == 422

        # A conflict is declared by staff where the holder holds a licence: a district whose
        # register does not have it cannot keep an inspector out of its draws.
        declared = {"inspector": "执法人员甲", "holder_uscc": holders[0], "reason": "近亲属任职"}
        elsewhere = await client.post(
            "/api/v1/inspector-conflicts",
            json=declared,
            headers=tokens.staff(Role.APPROVER, "310118"),
        )
        assert elsewhere.status_code == 403, elsewhere.text
        assert problem(elsewhere)["code"] == "outside_jurisdiction"
        conflict = await client.post("/api/v1/inspector-conflicts", json=declared, headers=approver)
        assert conflict.status_code == 201, conflict.text

        # Two inspectors, one in conflict with a holder: nothing is drawn, nothing is written.
        short = plan_body(inspectors=["执法人员甲", "执法人员乙"])
        short_plan = (
            await client.post("/api/v1/inspection-plans", json=short, headers=approver)
        ).json()
        refused = await client.post(
            f"/api/v1/inspection-plans/{short_plan['id']}/draw", headers=approver
        )
        assert refused.status_code == 409 and problem(refused)["code"] == "not_enough_inspectors"
        unchanged = await client.get(
            f"/api/v1/inspection-plans/{short_plan['id']}", headers=approver
        )
        assert unchanged.json()["status"] == "draft" and unchanged.json()["draw"] is None
        none = await client.get(f"/api/v1/inspections?plan={short_plan['id']}", headers=approver)
        assert none.json()["items"] == []

        created = await client.post("/api/v1/inspection-plans", json=plan_body(), headers=approver)
        assert created.status_code == 201, created.text
        plan_id = created.json()["id"]
        drawn = await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
        assert drawn.status_code == 200, drawn.text
        draw = drawn.json()["draw"]
        assert len(draw["seed"]) == 64
        targets = {t[0]: t for t in draw["targets"]}
        assert set(targets) == {*holders, person, delegated}
        assert "执法人员甲" not in targets[holders[0]][2]
        again = await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
        assert again.status_code == 409 and problem(again)["code"] == "plan_already_drawn"

        # Anyone with the published inputs replays the draw and gets the same one.
        inputs = await client.get(
            f"/api/v1/inspection-plans/{plan_id}/draw-inputs", headers=approver
        )
        assert inputs.status_code == 200
        published = DrawInputs.model_validate(inputs.json())
        assert published.seed == draw["seed"]
        assert targets_json(replay_draw(published)) == draw["targets"]
        replay = await client.post(f"/api/v1/inspection-plans/{plan_id}/replay", headers=approver)
        assert replay.json()["matches"] is True
        # The seed and the digests are published with the plan, without login, before any
        # inspection: the inputs given to anyone replay to the published result.
        public_plans = await client.get("/api/v1/public/inspection-plans")
        assert public_plans.status_code == 200, public_plans.text
        [announced] = public_plans.json()["items"]
        assert announced["id"] == plan_id and announced["seed"] == draw["seed"]
        assert announced["candidates_count"] == 5 and announced["targets_count"] == 5
        given = {k: inputs.json()[k] for k in DRAW_INPUTS}
        assert announced["inputs_sha256"] == digest(given)
        assert announced["targets_sha256"] == digest(targets_json(replay_draw(published)))
        assert not {"targets", "candidates", "inspectors", "conflicts"} & set(announced)
        record = await client.get(f"/api/v1/inspection-plans/{plan_id}/record", headers=approver)
        assert announced["record_hash"] == record.json()["entries"][1]["hash"]

        listed = await client.get(f"/api/v1/inspections?plan={plan_id}&limit=100", headers=reviewer)
        assert listed.status_code == 200
        tasks = {t["holder_uscc"]: t for t in listed.json()["items"]}
        assert set(tasks) == set(targets)
        due = add_working_days(clock.today(), 20).isoformat()
        assert all(t["due_on"] == due for t in tasks.values())
        scheduled = await _events(app, "cn.gov.license.licence.inspection_scheduled.v1")
        assert {e["holder_uscc"] for e in scheduled} == set(targets)

        # A result needs its evidence; a file that is not what it says is refused.
        first = tasks[holders[0]]["id"]
        today = clock.today().isoformat()
        compliant = {"outcome": "compliant", "inspected_on": today}
        no_evidence = await client.post(
            f"/api/v1/inspections/{first}/result", json=compliant, headers=reviewer
        )
        assert (
            no_evidence.status_code == 422 and problem(no_evidence)["code"] == "evidence_required"
        )
        fake = await client.post(
            f"/api/v1/inspections/{first}/evidence",
            files={"file": ("记录.pdf", b"not a pdf at all", "application/pdf")},
            headers=reviewer,
        )
        assert fake.status_code == 415
        for uscc in (holders[0], person, delegated):
            await _evidence(client, tasks[uscc]["id"], reviewer)
            ok = await client.post(
                f"/api/v1/inspections/{tasks[uscc]['id']}/result", json=compliant, headers=reviewer
            )
            assert ok.status_code == 200, ok.text
            assert ok.json()["published_on"] == today

        # Minor finding: 限期整改 and a re-inspection after the deadline.
        minor = tasks[holders[1]]["id"]
        await _evidence(client, minor, reviewer)
        for inspected_on, deadline in (
            (today, "9999-12-31"),
            (today, today),
            ((clock.today() - timedelta(days=3)).isoformat(), "2099-01-01"),
        ):
            wrong = await client.post(
                f"/api/v1/inspections/{minor}/result",
                json={
                    "outcome": "non_compliant",
                    "inspected_on": inspected_on,
                    "findings": "x",
                    "severity": "minor",
                    "rectify_by": deadline,
                },
                headers=reviewer,
            )
            assert wrong.status_code == 422, wrong.text
        rectify_by = clock.today() + timedelta(days=10)
        ordered = await client.post(
            f"/api/v1/inspections/{minor}/result",
            json={
                "outcome": "non_compliant",
                "inspected_on": today,
                "findings": "食盐储存场所不符合防潮要求",
                "severity": "minor",
                "rectify_by": rectify_by.isoformat(),
            },
            headers=reviewer,
        )
        assert ordered.status_code == 200, ordered.text
        assert ordered.json()["correction_status"] == "open"
        inspected = await _events(app, "cn.gov.license.licence.inspected.v1")
        notice = next(e for e in inspected if e["holder_uscc"] == holders[1])
        assert notice["rectify_by"] == rectify_by.isoformat()

        # Grave finding: a serious credit record and a proposed licence act.
        grave = tasks[holders[2]]["id"]
        await _evidence(client, grave, reviewer)
        result = await client.post(
            f"/api/v1/inspections/{grave}/result",
            json={
                "outcome": "non_compliant",
                "inspected_on": today,
                "findings": "以欺骗手段取得许可",
                "severity": "grave",
                "proposed_act": "revocation",
            },
            headers=reviewer,
        )
        assert result.status_code == 200, result.text
        proposal = result.json()["proposals"][0]
        licence_no = proposal["licence_no"]
        assert proposal["act_endpoint"] == f"/api/v1/licences/{licence_no}/revocation"

        # 一公开, without login: the individual's name is masked.
        public = await client.get("/api/v1/public/inspection-results?limit=100")
        assert public.status_code == 200
        rows = {r["holder_uscc"]: r for r in public.json()["items"]}
        assert rows[person]["holder_name"] == "张**"
        assert rows[holders[0]]["holder_name"].startswith("示范企业")
        assert rows[holders[2]]["outcome_label"] == "不合格"
        assert "findings" not in rows[holders[2]]

        # The re-inspection: not "missed" before the deadline; after it, still not right.
        listed = await client.get(
            f"/api/v1/inspections?plan={plan_id}&status=open", headers=reviewer
        )
        reinspection = next(t for t in listed.json()["items"] if t["kind"] == "reinspection")
        assert reinspection["reinspection_of"] == minor
        await _evidence(client, reinspection["id"], reviewer)
        still_bad = {
            "outcome": "non_compliant",
            "inspected_on": today,
            "findings": "逾期仍未整改",
            "severity": "minor",
        }
        early = await client.post(
            f"/api/v1/inspections/{reinspection['id']}/result", json=still_bad, headers=reviewer
        )
        assert early.status_code == 409
        later = rectify_by + timedelta(days=3)
        monkeypatch.setattr(clock, "today", lambda: later)
        missed = await client.post(
            f"/api/v1/inspections/{reinspection['id']}/result",
            json={**still_bad, "inspected_on": later.isoformat()},
            headers=reviewer,
        )
        assert missed.status_code == 200, missed.text
        assert missed.json()["proposals"][0]["act"] == "suspension"
        original = await client.get(f"/api/v1/inspections/{minor}", headers=reviewer)
        assert original.json()["correction_status"] == "missed"

        # The credit record bars 告知承诺 for that holder.
        service = tokens.service()
        eligibility = await client.get(
            f"/api/v1/enterprises/{holders[1]}/commitment-eligibility", headers=service
        )
        assert eligibility.json()["eligible"] is False
        fine = await client.get(
            f"/api/v1/enterprises/{holders[0]}/commitment-eligibility", headers=service
        )
        assert fine.json()["eligible"] is True

        stats = await client.get(f"/api/v1/inspection-plans/{plan_id}/statistics", headers=approver)
        total = stats.json()["total"]
        assert total["drawn"] == 5 and total["inspected"] == 5
        assert total["compliant_share"] == 0.6
        assert total["corrections_ordered"] == 1 and total["corrections_missed"] == 1
        assert total["published_late"] == 0
        by_item = {i["item_code"]: i for i in stats.json()["items"]}
        assert by_item["JXW-XK-001"]["drawn"] == 1

        record = await client.get(f"/api/v1/inspection-plans/{plan_id}/record", headers=approver)
        assert record.json()["intact"] is True
        kinds = [e["kind"] for e in record.json()["entries"]]
        assert kinds[:2] == ["plan_created", "drawn"] and kinds.count("result") == 6

        # The proposal is carried out through the licence act, and the list shows it done.
        revoked = await client.post(
            proposal["act_endpoint"],
            json={
                "legal_basis": "《中华人民共和国行政许可法》第六十九条第二款",
                "reason": "以欺骗手段取得许可",
            },
            headers=approver,
        )
        assert revoked.status_code == 200, revoked.text
        proposals = await client.get("/api/v1/inspection-proposals", headers=approver)
        done = next(p for p in proposals.json() if p["licence_no"] == licence_no)
        assert done["licence_status"] == "revoked"

        # The next draw: only the high-risk class sampled, and only the holder with a serious
        # record whose licence is still valid is in it.
        high_only = plan_body(ratios={"A": 0.0, "B": 0.0, "C": 0.0, "D": 1.0})
        second = await client.post("/api/v1/inspection-plans", json=high_only, headers=approver)
        redrawn = await client.post(
            f"/api/v1/inspection-plans/{second.json()['id']}/draw", headers=approver
        )
        assert [(t[0], t[1]) for t in redrawn.json()["draw"]["targets"]] == [(holders[1], "D")]
        # Both drawn plans are published, newest draw first, a page at a time; the undrawn is not.
        newest = await client.get("/api/v1/public/inspection-plans?limit=1")
        assert [p["id"] for p in newest.json()["items"]] == [second.json()["id"]]
        older = await client.get(
            f"/api/v1/public/inspection-plans?limit=1&cursor={newest.json()['next_cursor']}"
        )
        assert [p["id"] for p in older.json()["items"]] == [plan_id]
        assert older.json()["next_cursor"] is None

        # District staff see neither the city's plan nor its tasks outside their area.
        hidden = await client.get(f"/api/v1/inspection-plans/{plan_id}", headers=district)
        assert hidden.status_code == 403
        listed_plans = await client.get("/api/v1/inspection-plans?limit=2", headers=approver)
        page = listed_plans.json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = await client.get(
            f"/api/v1/inspection-plans?cursor={page['next_cursor']}", headers=approver
        )
        ids = {p["id"] for p in page["items"]} | {p["id"] for p in rest.json()["items"]}
        assert plan_id in ids and len(ids) == 3
        assert (await client.get("/api/v1/inspection-plans", headers=district)).json()[
            "items"
        ] == []
