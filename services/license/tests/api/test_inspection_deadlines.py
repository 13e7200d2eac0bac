"""A missed 限期整改 deadline found by the worker's timer, through the REST API: a non-compliant
result orders correction; once the re-inspection's due date has passed without finding it put
right, the timer (two replicas at once) marks the order missed exactly once, records a serious
bad-credit record and proposes a licence act, tells the holder and the staff, and the holder's next
draw (class D) and its 告知承诺 eligibility change; the act is carried out through the licence acts.
Also the other limits a plan keeps: a result published after its 20 working days is counted late,
and an altered draw or record is found out by the replay and the hash chain."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from govshared.auth import Principal, Role
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.context import context_of
from licensing.db import outbox_events
from licensing.errors import InspectionAlreadyRecorded
from licensing.inspections.draw import risk_class_of
from licensing.inspections.models import Inspection, InspectionDraw, InspectionRecord
from licensing.inspections.results import ResultService
from licensing.inspections.schemas import ResultCreate
from licensing.workdays import add_working_days
from licensing.worker import LicenceTimers

FreshApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MISSED_EVENT = "cn.gov.license.licence.rectification_missed.v1"


def _plan(ratios: dict[str, float]) -> dict[str, Any]:
    today = clock.today()
    return {
        "name": "食盐批发许可双随机抽查",
        "item_codes": ["JXW-XK-002"],
        "jurisdiction": "310000",
        "period_from": today.isoformat(),
        "period_to": (today + timedelta(days=90)).isoformat(),
        "ratios": ratios,
        "inspectors": ["执法人员甲", "执法人员乙", "执法人员丙"],
    }


async def _result(
    client: httpx.AsyncClient, inspection_id: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    uploaded = await client.post(
        f"/api/v1/inspections/{inspection_id}/evidence",
        files={"file": ("现场检查记录.png", PNG, "image/png")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    return await client.post(
        f"/api/v1/inspections/{inspection_id}/result", json=body, headers=headers
    )


async def _notices(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.execute(
                select(outbox_events.c.payload)
                .where(
                    outbox_events.c.event_type == MISSED_EVENT,
                    outbox_events.c.destination == "notify",
                )
                .order_by(outbox_events.c.created_at, outbox_events.c.id)
            )
        ).scalars()
        return [json.loads(p)["data"] for p in payloads]


def _second_replica(app: FastAPI) -> LicenceTimers:
    """Another worker's timers on the same database."""
    settings = app.state.settings
    return LicenceTimers(
        sessionmaker=app.state.sessionmaker,
        outbox=context_of(app).outbox,
        sealing=context_of(app).sealing,
        policy=context_of(app).policy,
        poll_seconds=settings.timer_poll_seconds,
        reinspection_working_days=settings.reinspection_working_days,
    )


async def test_a_missed_correction_deadline_is_found_by_the_timer_once(
    fresh_app: FreshApp,
    issuer: Callable[..., Any],
    tokens: Tokens,
    proof_of_service: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_app() as (app, client):
        issue = issuer(client, tokens, app)
        late, on_time = random_uscc(), random_uscc()
        licence_no = await issue(uscc=late, applicant_name="逾期盐业有限公司")
        await issue(uscc=on_time, applicant_name="守时盐业有限公司")
        approver = tokens.staff(Role.APPROVER, "310000")
        reviewer = tokens.staff(Role.REVIEWER, "310000")
        service = tokens.service()

        plan = await client.post(
            "/api/v1/inspection-plans",
            json=_plan({"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}),
            headers=approver,
        )
        plan_id = plan.json()["id"]
        drawn = await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
        assert {(t[0], t[1]) for t in drawn.json()["draw"]["targets"]} == {
            (late, "A"),
            (on_time, "A"),
        }
        listed = await client.get(f"/api/v1/inspections?plan={plan_id}", headers=reviewer)
        tasks = {t["holder_uscc"]: t["id"] for t in listed.json()["items"]}
        today = clock.today()
        rectify_by = today + timedelta(days=10)
        finding = {
            "outcome": "non_compliant",
            "inspected_on": today.isoformat(),
            "findings": "食盐储存场所不符合防潮要求",
            "severity": "minor",
            "rectify_by": rectify_by.isoformat(),
        }
        for uscc in (late, on_time):
            ordered = await _result(client, tasks[uscc], finding, reviewer)
            assert ordered.status_code == 200, ordered.text
            assert ordered.json()["correction_status"] == "open"
        listed = await client.get(
            f"/api/v1/inspections?plan={plan_id}&status=open", headers=reviewer
        )
        reinspections = {t["holder_uscc"]: t for t in listed.json()["items"]}
        due_on = date.fromisoformat(reinspections[late]["due_on"])
        assert due_on == add_working_days(rectify_by, 5)
        # One holder puts it right and its re-inspection finds so, before the deadline.
        closed = await _result(
            client,
            reinspections[on_time]["id"],
            {"outcome": "compliant", "inspected_on": today.isoformat()},
            reviewer,
        )
        assert closed.status_code == 200, closed.text
        eligible = await client.get(
            f"/api/v1/enterprises/{late}/commitment-eligibility", headers=service
        )
        assert eligible.json()["eligible"] is True

        # The deadline has passed, but the inspectors still have the re-inspection's window.
        monkeypatch.setattr(clock, "today", lambda: rectify_by + timedelta(days=1))
        await context_of(app).timers.run_once()
        order = await client.get(f"/api/v1/inspections/{tasks[late]}", headers=reviewer)
        assert order.json()["correction_status"] == "open"
        assert await _notices(app) == []

        # Past the re-inspection's due date, nobody found it put right: two replicas tick at once.
        after = due_on + timedelta(days=1)
        monkeypatch.setattr(clock, "today", lambda: after)
        await asyncio.gather(context_of(app).timers.run_once(), _second_replica(app).run_once())
        await context_of(app).timers.run_once()
        order = await client.get(f"/api/v1/inspections/{tasks[late]}", headers=reviewer)
        assert order.json()["correction_status"] == "missed"
        proposals = order.json()["proposals"]
        assert len(proposals) == 1
        assert proposals[0]["act"] == "suspension"
        assert proposals[0]["act_endpoint"] == f"/api/v1/licences/{licence_no}/penalty-notices"
        assert proposals[0]["reason"].startswith("责令限期整改逾期未改正")
        kept = await client.get(f"/api/v1/inspections/{tasks[on_time]}", headers=reviewer)
        assert kept.json()["correction_status"] == "closed_on_time"

        # The holder and the jurisdiction's staff are told, once.
        notices = await _notices(app)
        assert len(notices) == 1
        assert notices[0]["holder_uscc"] == late and notices[0]["jurisdiction"] == "310000"
        assert notices[0]["rectify_by"] == rectify_by.isoformat()
        assert "已记入严重失信记录" in notices[0]["reason"]
        assert "暂扣许可证件" in notices[0]["reason"]

        # One serious credit record: 告知承诺 is barred; the other holder keeps it.
        barred = await client.get(
            f"/api/v1/enterprises/{late}/commitment-eligibility", headers=service
        )
        assert barred.json()["eligible"] is False
        assert [r["kind"] for r in barred.json()["records"]] == ["rectification_missed"]
        fine = await client.get(
            f"/api/v1/enterprises/{on_time}/commitment-eligibility", headers=service
        )
        assert fine.json()["eligible"] is True

        # The re-inspection may still record what it finds; the consequences are not drawn again.
        late_result = await _result(
            client,
            reinspections[late]["id"],
            {
                "outcome": "non_compliant",
                "inspected_on": after.isoformat(),
                "findings": "仍未整改",
                "severity": "minor",
            },
            reviewer,
        )
        assert late_result.status_code == 200, late_result.text
        assert late_result.json()["proposals"] == []
        again = await client.get(
            f"/api/v1/enterprises/{late}/commitment-eligibility", headers=service
        )
        assert len(again.json()["records"]) == 1
        assert len(await _notices(app)) == 1

        stats = await client.get(f"/api/v1/inspection-plans/{plan_id}/statistics", headers=approver)
        total = stats.json()["total"]
        assert total["corrections_ordered"] == 2
        assert total["corrections_missed"] == 1 and total["corrections_closed_on_time"] == 1
        record = await client.get(f"/api/v1/inspection-plans/{plan_id}/record", headers=approver)
        assert record.json()["intact"] is True
        kinds = [e["kind"] for e in record.json()["entries"]]
        assert kinds.count("correction_missed") == 1

        # The next draw: the holder is now high risk (class D), the other still low (A).
        redrawn_plan = await client.post(
            "/api/v1/inspection-plans",
            json=_plan({"A": 0.0, "B": 0.0, "C": 0.0, "D": 1.0}),
            headers=approver,
        )
        redrawn = await client.post(
            f"/api/v1/inspection-plans/{redrawn_plan.json()['id']}/draw", headers=approver
        )
        assert [(t[0], t[1]) for t in redrawn.json()["draw"]["targets"]] == [(late, "D")]

        # Staff carry the proposal out through the licence acts: first the notice of rights
        # (行政处罚法 Art. 44), then, the hearing not asked for by its deadline, the decision.
        hearing_deadline = add_working_days(after, 5)
        notice = await client.post(
            proposals[0]["act_endpoint"],
            json={
                "penalty": "suspension",
                "legal_basis": "《食盐专营办法》第二十九条",
                "reason": "责令限期整改逾期未改正",
                "hearing_request_deadline": hearing_deadline.isoformat(),
            },
            headers=approver,
        )
        assert notice.status_code == 200, notice.text
        assert notice.json()["status"] == "valid"
        await proof_of_service(client, licence_no, on=after)  # notify delivered it that day
        monkeypatch.setattr(clock, "today", lambda: hearing_deadline + timedelta(days=1))
        decided = await client.post(
            f"/api/v1/licences/{licence_no}/suspension",
            json={
                "legal_basis": "《食盐专营办法》第二十九条",
                "reason": "责令限期整改逾期未改正",
                "penalty_decision_no": "沪盐罚〔2026〕47号",
                "rights_notified_on": after.isoformat(),
                "hearing": "not_requested",
                "hearing_request_deadline": hearing_deadline.isoformat(),
            },
            headers=approver,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == "suspended"
        listed_proposals = await client.get("/api/v1/inspection-proposals", headers=approver)
        carried_out = next(p for p in listed_proposals.json() if p["licence_no"] == licence_no)
        assert carried_out["licence_status"] == "suspended"
        # Still barred, and a suspended licence is no longer among the next plan's candidates.
        barred = await client.get(
            f"/api/v1/enterprises/{late}/commitment-eligibility", headers=service
        )
        assert barred.json()["eligible"] is False


async def test_the_register_is_read_with_each_holders_class_once(
    fresh_app: FreshApp, issuer: Callable[..., Any], tokens: Tokens
) -> None:
    """The candidates the database computes: one per holder, however many licences of the plan
    it holds, in the class ``risk_class_of`` gives its bad-credit records."""
    async with fresh_app() as (app, client):
        issue = issuer(client, tokens, app)
        admin = tokens.staff(Role.ADMIN, "310000")
        records: dict[str, list[bool]] = {
            random_uscc(): [],
            random_uscc(): [False],
            random_uscc(): [False, False],
            random_uscc(): [False, False, False],
            random_uscc(): [False, True],
        }
        for uscc, serious in records.items():
            await issue(uscc=uscc, applicant_name=f"示范企业{uscc[-4:]}有限公司")
            for flag in serious:
                recorded = await client.post(
                    f"/api/v1/enterprises/{uscc}/credit-records",
                    json={"kind": "serious_dishonesty", "serious": flag, "reason": "测试记录"},
                    headers=admin,
                )
                assert recorded.status_code == 201, recorded.text
        several = next(iter(records))
        await issue(uscc=several, item_code="JXW-XK-001", applicant_name="示范企业有限公司")
        plan = _plan({"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0})
        plan["item_codes"] = ["JXW-XK-001", "JXW-XK-002"]
        approver = tokens.staff(Role.APPROVER, "310000")
        created = await client.post("/api/v1/inspection-plans", json=plan, headers=approver)
        plan_id = created.json()["id"]
        await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
        inputs = await client.get(
            f"/api/v1/inspection-plans/{plan_id}/draw-inputs", headers=approver
        )
        expected = sorted(
            [uscc, risk_class_of(records=len(flags), serious=any(flags)).value]
            for uscc, flags in records.items()
        )
        assert inputs.json()["candidates"] == expected
        assert [c for _, c in expected].count("C") == 2
        listed = await client.get(f"/api/v1/inspections?plan={plan_id}", headers=approver)
        task = next(t for t in listed.json()["items"] if t["holder_uscc"] == several)
        assert len(task["licence_nos"]) == 2


async def test_a_result_recorded_after_the_publication_limit_is_counted_late(
    fresh_app: FreshApp,
    issuer: Callable[..., Any],
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A result is published when it is recorded; recorded more than 20 working days after the
    inspection (国发〔2019〕5号), it is still published, and the plan's statistics count it late."""
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        await issuer(client, tokens, app)(uscc=uscc, applicant_name="迟录盐业有限公司")
        approver = tokens.staff(Role.APPROVER, "310000")
        plan = await client.post(
            "/api/v1/inspection-plans",
            json=_plan({"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}),
            headers=approver,
        )
        plan_id = plan.json()["id"]
        await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
        [task] = (await client.get(f"/api/v1/inspections?plan={plan_id}", headers=approver)).json()[
            "items"
        ]
        inspected_on = clock.today()
        limit = add_working_days(inspected_on, 20)
        late = limit + timedelta(days=1)
        monkeypatch.setattr(clock, "today", lambda: late)
        recorded = await _result(
            client,
            task["id"],
            {"outcome": "compliant", "inspected_on": inspected_on.isoformat()},
            approver,
        )
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["publish_by"] == limit.isoformat()
        assert recorded.json()["published_on"] == late.isoformat()
        public = await client.get("/api/v1/public/inspection-results")
        assert [r["holder_uscc"] for r in public.json()["items"]] == [uscc]
        stats = await client.get(f"/api/v1/inspection-plans/{plan_id}/statistics", headers=approver)
        assert stats.json()["total"]["published_late"] == 1


async def test_an_altered_draw_or_record_is_found_out(
    fresh_app: FreshApp, issuer: Callable[..., Any], tokens: Tokens
) -> None:
    """The replay and the hash chain are what make the draw auditable: a target swapped in the
    stored draw no longer replays, a record entry edited breaks the chain."""
    async with fresh_app() as (app, client):
        issue = issuer(client, tokens, app)
        for _ in range(3):
            await issue(uscc=random_uscc(), applicant_name="示范盐业有限公司")
        approver = tokens.staff(Role.APPROVER, "310000")
        plan = await client.post(
            "/api/v1/inspection-plans",
            json=_plan({"A": 0.5, "B": 0.5, "C": 0.5, "D": 0.5}),
            headers=approver,
        )
        plan_id = plan.json()["id"]
        drawn = await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
        replay = f"/api/v1/inspection-plans/{plan_id}/replay"
        assert (await client.post(replay, headers=approver)).json()["matches"] is True
        record = f"/api/v1/inspection-plans/{plan_id}/record"
        assert (await client.get(record, headers=approver)).json()["intact"] is True

        targets = drawn.json()["draw"]["targets"]
        swapped = [[random_uscc(), "A", ["执法人员甲", "执法人员乙"]], *targets[1:]]
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(InspectionDraw)
                .where(InspectionDraw.plan_id == uuid.UUID(plan_id))
                .values(targets=swapped)
            )
            await session.execute(
                update(InspectionRecord)
                .where(InspectionRecord.plan_id == uuid.UUID(plan_id), InspectionRecord.seq == 1)
                .values(payload={"name": "改过的计划"})
            )
        assert (await client.post(replay, headers=approver)).json()["matches"] is False
        assert (await client.get(record, headers=approver)).json()["intact"] is False


async def _one_drawn_task(
    client: httpx.AsyncClient, tokens: Tokens, approver: dict[str, str]
) -> tuple[str, str]:
    """A plan over every holder, drawn: its id and its one task's id."""
    plan = await client.post(
        "/api/v1/inspection-plans",
        json=_plan({"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}),
        headers=approver,
    )
    plan_id = plan.json()["id"]
    drawn = await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
    assert drawn.status_code == 200, drawn.text
    [task] = (await client.get(f"/api/v1/inspections?plan={plan_id}", headers=approver)).json()[
        "items"
    ]
    return plan_id, task["id"]


async def test_an_unreachable_reinspection_before_the_deadline_misses_nothing(
    fresh_app: FreshApp,
    issuer: Callable[..., Any],
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the 限期整改 deadline only a re-inspection finding the correction made settles the
    order: any other outcome (here: the holder could not be reached) is refused, the holder
    gets no serious credit record, keeps 告知承诺 and faces no proposed act; the re-inspection
    stays open and is recorded after the deadline."""
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        await issuer(client, tokens, app)(uscc=uscc, applicant_name="失联盐业有限公司")
        reviewer = tokens.staff(Role.REVIEWER, "310000")
        service = tokens.service()
        plan_id, task = await _one_drawn_task(client, tokens, tokens.staff(Role.APPROVER, "310000"))
        today = clock.today()
        rectify_by = today + timedelta(days=30)
        ordered = await _result(
            client,
            task,
            {
                "outcome": "non_compliant",
                "inspected_on": today.isoformat(),
                "findings": "食盐储存场所不符合防潮要求",
                "severity": "minor",
                "rectify_by": rectify_by.isoformat(),
            },
            reviewer,
        )
        assert ordered.status_code == 200, ordered.text
        listed = await client.get(
            f"/api/v1/inspections?plan={plan_id}&status=open", headers=reviewer
        )
        [reinspection] = listed.json()["items"]

        for outcome in ("unreachable", "not_found"):
            early = await _result(
                client,
                reinspection["id"],
                {"outcome": outcome, "inspected_on": today.isoformat()},
                reviewer,
            )
            assert early.status_code == 409, early.text
            assert problem(early)["code"] == "rectification_period_running"
        order = await client.get(f"/api/v1/inspections/{task}", headers=reviewer)
        assert order.json()["correction_status"] == "open"
        assert order.json()["proposals"] == []
        eligibility = await client.get(
            f"/api/v1/enterprises/{uscc}/commitment-eligibility", headers=service
        )
        assert eligibility.json()["eligible"] is True
        assert eligibility.json()["records"] == []
        proposals = await client.get("/api/v1/inspection-proposals", headers=reviewer)
        assert proposals.json() == []
        assert await _notices(app) == []
        still_open = await client.get(f"/api/v1/inspections/{reinspection['id']}", headers=reviewer)
        assert still_open.json()["status"] == "open"

        # After the deadline the same outcome is recorded: nobody found it put right.
        later = rectify_by + timedelta(days=1)
        monkeypatch.setattr(clock, "today", lambda: later)
        recorded = await client.post(
            f"/api/v1/inspections/{reinspection['id']}/result",
            json={"outcome": "unreachable", "inspected_on": later.isoformat()},
            headers=reviewer,
        )
        assert recorded.status_code == 200, recorded.text
        order = await client.get(f"/api/v1/inspections/{task}", headers=reviewer)
        assert order.json()["correction_status"] == "missed"


async def test_a_result_recorded_twice_at_once_draws_its_consequences_once(
    fresh_app: FreshApp, issuer: Callable[..., Any], tokens: Tokens
) -> None:
    """Two results of one task, each read while the task was open (two staff submitting at
    once): the second is refused (409) and the grave finding gives one credit record and one
    proposal, not two."""
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        await issuer(client, tokens, app)(uscc=uscc, applicant_name="重复盐业有限公司")
        reviewer = tokens.staff(Role.REVIEWER, "310000")
        _, task = await _one_drawn_task(client, tokens, tokens.staff(Role.APPROVER, "310000"))
        uploaded = await client.post(
            f"/api/v1/inspections/{task}/evidence",
            files={"file": ("现场检查记录.png", PNG, "image/png")},
            headers=reviewer,
        )
        assert uploaded.status_code == 201, uploaded.text
        settings, ctx = app.state.settings, context_of(app)

        def service(session: Any) -> ResultService:
            return ResultService(
                session,
                outbox=ctx.outbox,
                storage=ctx.evidence_storage,
                publication_working_days=settings.inspection_publication_working_days,
                reinspection_working_days=settings.reinspection_working_days,
                max_upload_bytes=settings.max_upload_bytes,
            )

        body = ResultCreate.model_validate(
            {
                "outcome": "non_compliant",
                "inspected_on": clock.today().isoformat(),
                "findings": "以欺骗手段取得许可",
                "severity": "grave",
            }
        )
        actor = Principal(subject="staff:乙", role=Role.REVIEWER, jurisdiction="310000")
        # The second request read the task (open) before the first one committed.
        async with app.state.sessionmaker() as read:
            stale = await read.get(Inspection, uuid.UUID(task))
            assert stale is not None and stale.status == "open"
        async with app.state.sessionmaker() as first, first.begin():
            current = await first.get(Inspection, uuid.UUID(task))
            assert current is not None
            await service(first).record_result(current, body, actor=actor)
        async with app.state.sessionmaker() as second:
            with pytest.raises(InspectionAlreadyRecorded):
                async with second.begin():
                    await service(second).record_result(stale, body, actor=actor)

        records = await client.get(
            f"/api/v1/enterprises/{uscc}/commitment-eligibility",
            headers=tokens.service(),
        )
        assert len(records.json()["records"]) == 1
        detail = await client.get(f"/api/v1/inspections/{task}", headers=reviewer)
        assert len(detail.json()["proposals"]) == 1
        again = await client.post(
            f"/api/v1/inspections/{task}/result",
            json={"outcome": "compliant", "inspected_on": clock.today().isoformat()},
            headers=reviewer,
        )
        assert again.status_code == 409
        assert problem(again)["code"] == "inspection_already_recorded"
