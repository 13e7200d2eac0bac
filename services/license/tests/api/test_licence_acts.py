"""The law's acts on a licence, each its own status, record, event and public answer.

撤销 (行政许可法 Art. 69), 撤回 (Art. 8), 吊销 and 暂扣 (penalties under the 行政处罚法, after the
notice of the right to a hearing, Arts. 44, 63, 64), 注销 (Art. 70); changes only on the holder's
application (Art. 49); the 告知承诺 follow-up of 国办发〔2020〕42号.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.db import mark_read_only
from govshared.events import EventType, LicenceEventData, ReformMode
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.db import outbox_events
from licensing.models import Licence
from licensing.workdays import add_working_days

Issue = Callable[..., Awaitable[str]]
Deliver = Callable[..., Awaitable[httpx.Response]]
ServeNotice = Callable[..., Awaitable[dict[str, date]]]
NewEvent = Callable[..., dict[str, Any]]

PENALTY_BASIS = "《食盐专营办法》第二十九条"


def _approver(tokens: Tokens) -> dict[str, str]:
    return tokens.staff(Role.APPROVER, "310000")


def _penalty(**overrides: Any) -> dict[str, Any]:
    today = clock.today()
    body: dict[str, Any] = {
        "legal_basis": PENALTY_BASIS,
        "reason": "违反食盐储存规定，情节严重",
        "penalty_decision_no": "沪盐罚〔2026〕31号",
        "rights_notified_on": (today - timedelta(days=20)).isoformat(),
        "hearing": "held",
        "hearing_held_on": (today - timedelta(days=5)).isoformat(),
    }
    body.update(overrides)
    return body


async def _events(session: AsyncSession, licence_no: str) -> list[dict[str, Any]]:
    # A fresh snapshot (the app committed since the last read), still as a reader.
    await session.rollback()
    await mark_read_only(session)
    rows = (
        await session.execute(
            select(outbox_events.c.payload)
            .where(outbox_events.c.payload.contains(licence_no))
            .where(outbox_events.c.destination == "notify")
            .order_by(outbox_events.c.created_at)
        )
    ).scalars()
    return [json.loads(p) for p in rows]


async def _one_event(session: AsyncSession, licence_no: str, event_type: str) -> LicenceEventData:
    [event] = [e for e in await _events(session, licence_no) if e["type"] == event_type]
    return LicenceEventData.model_validate(event["data"])


async def _verify(client: httpx.AsyncClient, licence_no: str) -> dict[str, Any]:
    response = await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
    return dict(response.json())


async def _detail(client: httpx.AsyncClient, tokens: Tokens, licence_no: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/licences/{licence_no}", headers=_approver(tokens))
    return dict(response.json())


async def test_art70_cancel_application_cancels_the_licence_and_issues_none(
    deliver: Deliver,
    new_event: NewEvent,
    issue: Issue,
    client: httpx.AsyncClient,
    tokens: Tokens,
    session: AsyncSession,
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    cancel = new_event(uscc=uscc, details={"business_type": "cancel"})
    assert (await deliver(cancel)).json()["processed"] == 1
    assert (await deliver(cancel)).json()["duplicates"] == 1
    licences = (await session.scalars(select(Licence).where(Licence.holder_uscc == uscc))).all()
    assert [(lic.licence_no, lic.status) for lic in licences] == [(licence_no, "cancelled")]
    detail = await _detail(client, tokens, licence_no)
    assert detail["status_label"] == "已注销"
    assert detail["cancelled_on"] == clock.today().isoformat()
    assert detail["cancellation_ground"] == "holder_application"
    assert cancel["data"]["application_no"] in detail["status_reason"]
    event = await _one_event(session, licence_no, EventType.LICENCE_CANCELLED)
    assert event.cancelled_on == clock.today() and event.cancellation_ground == "holder_application"
    verdict = await _verify(client, licence_no)
    assert verdict["result"] == "not_valid" and verdict["status"] == "cancelled"
    assert "依法注销（《行政许可法》第七十条）" in verdict["message"]
    # A new licence is not issued for a cancel application, even without a licence to cancel.
    stranger = random_uscc()
    assert (await deliver(new_event(uscc=stranger, details={"business_type": "cancel"}))).json()[
        "processed"
    ] == 1
    assert (
        await session.scalars(select(Licence).where(Licence.holder_uscc == stranger))
    ).all() == []


async def test_art70_cancellation_on_the_holders_termination(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    licence_no = await issue(uscc=random_uscc())
    url = f"/api/v1/licences/{licence_no}/cancellation"
    own_request = await client.post(
        url, json={"ground": "holder_application", "reason": "企业申请"}, headers=_approver(tokens)
    )
    assert own_request.status_code == 422  # the holder's own 注销 is its application
    no_basis = await client.post(
        url, json={"ground": "other_statutory", "reason": "其他情形"}, headers=_approver(tokens)
    )
    assert no_basis.status_code == 422
    cancelled = await client.post(
        url,
        json={"ground": "holder_terminated", "reason": "企业已注销登记"},
        headers=_approver(tokens),
    )
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and "第七十条第三项" in body["cancellation_ground_label"]
    again = await client.post(
        url,
        json={"ground": "holder_terminated", "reason": "企业已注销登记"},
        headers=_approver(tokens),
    )
    assert again.status_code == 409 and problem(again)["code"] == "licence_not_active"


async def test_art69_revocation_then_cancellation(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, session: AsyncSession
) -> None:
    licence_no = await issue(uscc=random_uscc())
    url = f"/api/v1/licences/{licence_no}/revocation"
    without_basis = await client.post(url, json={"reason": "骗取许可"}, headers=_approver(tokens))
    assert without_basis.status_code == 422
    revoked = await client.post(
        url,
        json={
            "legal_basis": "《中华人民共和国行政许可法》第六十九条第二款",
            "reason": "以欺骗手段取得",
        },
        headers=_approver(tokens),
    )
    assert revoked.status_code == 200, revoked.text
    detail = await _detail(client, tokens, licence_no)
    assert (detail["status"], detail["status_label"]) == ("revoked", "已撤销")
    assert [h["action"] for h in detail["history"]] == ["issued", "revoked", "cancelled"]
    assert detail["history"][1]["details"]["legal_basis"].endswith("第六十九条第二款")
    assert detail["cancellation_ground"] == "revoked"
    event = await _one_event(session, licence_no, EventType.LICENCE_REVOKED)
    assert event.legal_basis is not None and event.cancelled_on == clock.today()


async def test_art8_withdrawal_tells_the_compensation(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, session: AsyncSession
) -> None:
    licence_no = await issue(uscc=random_uscc())
    url = f"/api/v1/licences/{licence_no}/withdrawal"
    body = {
        "legal_basis": "《中华人民共和国行政许可法》第八条第二款；市政府关于调整盐业布局的决定",
        "reason": "所在区域规划调整，仓储设施须搬迁",
    }
    without_compensation = await client.post(url, json=body, headers=_approver(tokens))
    assert without_compensation.status_code == 422
    withdrawn = await client.post(
        url,
        json={
            **body,
            "compensation_note": "对搬迁造成的财产损失依法给予补偿，补偿申请请于90日内提出",
        },
        headers=_approver(tokens),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["status"], withdrawn.json()["status_label"]) == ("withdrawn", "已撤回")
    event = await _one_event(session, licence_no, EventType.LICENCE_WITHDRAWN)
    assert event.compensation_note is not None and "补偿" in event.compensation_note
    verdict = await _verify(client, licence_no)
    assert "依法撤回（《行政许可法》第八条）" in verdict["message"]


async def test_penalty_revocation_after_notice_of_the_right_to_a_hearing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    session: AsyncSession,
    serve_penalty_notice: ServeNotice,
) -> None:
    # 行政处罚法 Art. 44 (notice of rights), Arts. 63-64 (hearing asked within 5 days of it,
    # working days by Art. 85). The notice's dates are those the register recorded.
    licence_no = await issue(uscc=random_uscc())
    url = f"/api/v1/licences/{licence_no}/penalty-revocation"
    today = clock.today()

    async def attempt(**overrides: Any) -> httpx.Response:
        return await client.post(url, json=_penalty(**overrides), headers=_approver(tokens))

    never_told = await attempt()
    assert never_told.status_code == 409
    assert problem(never_told)["code"] == "penalty_notice_required"
    await serve_penalty_notice(
        client, licence_no, penalty="penalty_revocation", on=today - timedelta(days=20)
    )
    not_held = await attempt(hearing_held_on=None)
    assert not_held.status_code == 422
    notice_later = await attempt(rights_notified_on=(today + timedelta(days=1)).isoformat())
    assert notice_later.status_code == 409
    assert problem(notice_later)["code"] == "hearing_rights_not_respected"
    other_date = await attempt(rights_notified_on=(today - timedelta(days=30)).isoformat())
    assert other_date.status_code == 409
    assert "不符" in problem(other_date)["detail"]
    heard_before = await attempt(hearing_held_on=(today - timedelta(days=25)).isoformat())
    assert heard_before.status_code == 409
    assert "听证日期应当在事先告知之后" in problem(heard_before)["detail"]
    assert (await _detail(client, tokens, licence_no))["status"] == "valid"

    revoked = await attempt()
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["status_label"]) == (
        "penalty_revoked",
        "已吊销",
    )
    event = await _one_event(session, licence_no, EventType.LICENCE_PENALTY_REVOKED)
    assert event.penalty_decision_no == "沪盐罚〔2026〕31号"
    assert event.hearing == "held" and event.rights_notified_on == today - timedelta(days=20)
    verdict = await _verify(client, licence_no)
    assert verdict["status"] == "penalty_revoked" and "被依法吊销" in verdict["message"]
    assert verdict["act_on"] == today.isoformat()


async def test_a_penalty_rests_on_the_recorded_notice_of_that_penalty(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    monkeypatch: pytest.MonkeyPatch,
    serve_penalty_notice: ServeNotice,
) -> None:
    # 行政处罚法 Art. 44: the holder is told the penalty intended before it is imposed; the
    # hearing's deadline (Art. 64) is the one its notice stated, not one the decision claims.
    today = clock.today()
    waived = _penalty(hearing="waived", hearing_held_on=None, rights_notified_on=None)
    del waived["rights_notified_on"]

    # No notice ever served: no 暂扣.
    untold = await issue(uscc=random_uscc())
    suspended = await client.post(
        f"/api/v1/licences/{untold}/suspension", json=waived, headers=_approver(tokens)
    )
    assert suspended.status_code == 409
    assert problem(suspended)["code"] == "penalty_notice_required"
    detail = await _detail(client, tokens, untold)
    assert detail["status"] == "valid"
    assert [h["action"] for h in detail["history"]] == ["issued"]

    # Told today of an intended 暂扣 with 60 days to ask for a hearing: no 吊销 on it, and no
    # decision claiming an older notice whose deadline has passed.
    licence_no = await issue(uscc=random_uscc())
    deadline = today + timedelta(days=60)
    await serve_penalty_notice(client, licence_no, penalty="suspension", deadline=deadline)
    claimed = {
        **_penalty(hearing="not_requested", hearing_held_on=None),
        "rights_notified_on": (today - timedelta(days=20)).isoformat(),
        "hearing_request_deadline": (today - timedelta(days=1)).isoformat(),
    }
    heavier = await client.post(
        f"/api/v1/licences/{licence_no}/penalty-revocation",
        json=claimed,
        headers=_approver(tokens),
    )
    assert heavier.status_code == 409
    assert problem(heavier)["code"] == "penalty_notice_required"
    suspension = f"/api/v1/licences/{licence_no}/suspension"
    backdated = await client.post(suspension, json=claimed, headers=_approver(tokens))
    assert backdated.status_code == 409
    assert problem(backdated)["code"] == "hearing_rights_not_respected"
    not_requested = {
        k: v
        for k, v in claimed.items()
        if k not in ("rights_notified_on", "hearing_request_deadline")
    }
    early = await client.post(suspension, json=not_requested, headers=_approver(tokens))
    assert early.status_code == 409
    assert f"当事人可在{deadline.isoformat()}前要求听证" in problem(early)["detail"]
    assert (await _detail(client, tokens, licence_no))["status"] == "valid"

    # The lawful path: after the notice's own deadline, the dates come from the register.
    monkeypatch.setattr(clock, "today", lambda: deadline + timedelta(days=1))
    decided = await client.post(suspension, json=not_requested, headers=_approver(tokens))
    assert decided.status_code == 200, decided.text
    details = decided.json()["act_details"]
    assert details["rights_notified_on"] == today.isoformat()
    assert details["hearing_request_deadline"] == deadline.isoformat()
    # A notice is used up by its decision: suspended again later, the holder is told again.
    reinstated = await client.post(
        f"/api/v1/licences/{licence_no}/reinstatement",
        json={"reason": "整改完成"},
        headers=_approver(tokens),
    )
    assert reinstated.status_code == 200, reinstated.text
    again = await client.post(suspension, json=not_requested, headers=_approver(tokens))
    assert again.status_code == 409
    assert problem(again)["code"] == "penalty_notice_required"


async def test_penalty_dates_outside_the_calendar_are_refused_not_a_500(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    serve_penalty_notice: ServeNotice,
) -> None:
    licence_no = await issue(uscc=random_uscc())
    await serve_penalty_notice(client, licence_no, penalty="suspension")
    for dates in (
        {"rights_notified_on": "1999-03-01", "hearing_request_deadline": "1999-03-20"},
        {"hearing_request_deadline": "9999-12-31"},
    ):
        body = {**_penalty(hearing="not_requested", hearing_held_on=None), **dates}
        if "rights_notified_on" not in dates:
            del body["rights_notified_on"]
        refused = await client.post(
            f"/api/v1/licences/{licence_no}/suspension", json=body, headers=_approver(tokens)
        )
        assert refused.status_code == 422, refused.text
        assert problem(refused)["code"] == "validation_failed"
    assert (await _detail(client, tokens, licence_no))["status"] == "valid"


async def test_four_acts_are_four_statuses_and_four_events(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    session: AsyncSession,
    serve_penalty_notice: ServeNotice,
) -> None:
    bodies = {
        "revocation": {
            "legal_basis": "《行政许可法》第六十九条第一款第四项",
            "reason": "不符合法定条件",
        },
        "withdrawal": {
            "legal_basis": "《行政许可法》第八条第二款",
            "reason": "客观情况发生重大变化",
            "compensation_note": "依法给予补偿",
        },
        "penalty-revocation": _penalty(),
        "cancellation": {"ground": "force_majeure", "reason": "仓库毁于地震"},
    }
    seen = {}
    for path, body in bodies.items():
        licence_no = await issue(uscc=random_uscc())
        if path == "penalty-revocation":
            await serve_penalty_notice(
                client,
                licence_no,
                penalty="penalty_revocation",
                on=clock.today() - timedelta(days=20),
            )
        response = await client.post(
            f"/api/v1/licences/{licence_no}/{path}", json=body, headers=_approver(tokens)
        )
        assert response.status_code == 200, response.text
        ended_types = [
            e["type"].split(".")[-2]
            for e in await _events(session, licence_no)
            if not e["type"].endswith(("issued.v1", "penalty_notified.v1"))
        ]
        assert len(ended_types) == 1, (path, await _events(session, licence_no))
        [ended] = ended_types
        verdict = await _verify(client, licence_no)
        seen[path] = (response.json()["status"], response.json()["status_label"], ended)
        assert verdict["status"] == response.json()["status"]
    assert seen == {
        "revocation": ("revoked", "已撤销", "revoked"),
        "withdrawal": ("withdrawn", "已撤回", "withdrawn"),
        "penalty-revocation": ("penalty_revoked", "已吊销", "penalty_revoked"),
        "cancellation": ("cancelled", "已注销", "cancelled"),
    }


async def test_art49_staff_cannot_change_particulars_on_their_own(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    licence_no = await issue(uscc=random_uscc())
    url = f"/api/v1/licences/{licence_no}/changes"
    scope = await client.post(
        url,
        json={"particulars": {"经营范围": "扩大"}, "reason": "工作人员调整"},
        headers=_approver(tokens),
    )
    assert scope.status_code == 403
    assert problem(scope)["code"] == "change_needs_holder_application"
    name = await client.post(
        url,
        json={
            "holder_name": "改名有限公司",
            "reason": "更名",
            "legal_basis": "《行政许可法》第八条",
            "compensation_note": "无损失",
        },
        headers=_approver(tokens),
    )
    assert name.status_code == 403
    assert problem(name)["code"] == "holder_name_change_needs_application"
    assert (await _detail(client, tokens, licence_no))["version"] == 1


async def _commitment_task(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, uscc: str
) -> tuple[str, dict[str, Any]]:
    licence_no = await issue(uscc=uscc, item_code="JXW-CN-012", reform_mode=ReformMode.COMMITMENT)
    tasks = (
        await client.get(
            "/api/v1/verification-tasks",
            params={"limit": 100},
            headers=tokens.staff(Role.REVIEWER, "310000"),
        )
    ).json()
    [task] = [t for t in tasks["items"] if t["licence_no"] == licence_no]
    return licence_no, task


async def test_42hao_unmet_conditions_are_ordered_put_right_before_any_revocation(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uscc = random_uscc()
    licence_no, task = await _commitment_task(client, tokens, issue, uscc)
    reviewer = tokens.staff(Role.REVIEWER, "310000")
    url = f"/api/v1/verification-tasks/{task['id']}/result"
    unmet = {"outcome": "conditions_unmet", "findings": "检验设备未按承诺配齐"}
    no_deadline = await client.post(url, json=unmet, headers=reviewer)
    assert no_deadline.status_code == 422
    assert problem(no_deadline)["code"] == "rectification_deadline_invalid"
    rectify_by = clock.today() + timedelta(days=30)
    ordered = await client.post(
        url, json={**unmet, "rectify_by": rectify_by.isoformat()}, headers=reviewer
    )
    assert ordered.status_code == 200, ordered.text
    assert ordered.json()["status"] == "rectifying"
    assert ordered.json()["rectify_by"] == rectify_by.isoformat()
    assert ordered.json()["due_on"] == rectify_by.isoformat()
    # Verified again: the task stays in the queue, due on the deadline.
    queue = (
        await client.get("/api/v1/verification-tasks", params={"limit": 100}, headers=reviewer)
    ).json()["items"]
    assert [t["status"] for t in queue if t["id"] == task["id"]] == ["rectifying"]
    # The licence stands while the holder puts it right; the holder is told the deadline.
    detail = await _detail(client, tokens, licence_no)
    assert detail["status"] == "valid"
    assert detail["history"][-1]["action"] == "rectification_ordered"
    notice = await _one_event(session, licence_no, EventType.LICENCE_RECTIFICATION_ORDERED)
    assert notice.rectify_by == rectify_by

    early = await client.post(url, json=unmet, headers=reviewer)
    assert early.status_code == 409
    assert problem(early)["code"] == "rectification_period_running"

    monkeypatch.setattr(clock, "today", lambda: rectify_by + timedelta(days=1))
    recheck = {**unmet, "findings": "复查：检验设备仍未配齐"}
    # The 撤销 it leads to is an approver's decision (Art. 69), not the reviewer's.
    by_reviewer = await client.post(url, json=recheck, headers=reviewer)
    assert by_reviewer.status_code == 403
    assert problem(by_reviewer)["code"] == "revocation_needs_decider"
    assert (await _detail(client, tokens, licence_no))["status"] == "valid"
    still_unmet = await client.post(
        url, json=recheck, headers=tokens.staff(Role.APPROVER, "310000")
    )
    assert still_unmet.status_code == 200, still_unmet.text
    assert still_unmet.json()["status"] == "failed"
    detail = await _detail(client, tokens, licence_no)
    assert detail["status"] == "revoked" and "第六十九条" in detail["act_basis"]
    eligibility = (
        await client.get(
            f"/api/v1/enterprises/{uscc}/commitment-eligibility",
            headers=tokens.service(),
        )
    ).json()
    [record] = eligibility["records"]
    assert record["kind"] == "commitment_unfulfilled" and record["licence_no"] == licence_no
    # Bad credit is recorded; only a false commitment bars the route.
    assert eligibility["eligible"] is True


async def test_42hao_rectified_conditions_pass_and_the_licence_stands(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    licence_no, task = await _commitment_task(client, tokens, issue, random_uscc())
    reviewer = tokens.staff(Role.REVIEWER, "310000")
    url = f"/api/v1/verification-tasks/{task['id']}/result"
    rectify_by = clock.today() + timedelta(days=15)
    await client.post(
        url,
        json={
            "outcome": "conditions_unmet",
            "findings": "未张贴许可公示",
            "rectify_by": rectify_by.isoformat(),
        },
        headers=reviewer,
    )
    passed = await client.post(
        url, json={"outcome": "passed", "findings": "复查：已整改到位"}, headers=reviewer
    )
    assert passed.status_code == 200 and passed.json()["status"] == "passed"
    assert (await _detail(client, tokens, licence_no))["status"] == "valid"


async def test_penalty_notice_serves_the_right_to_a_hearing_before_the_decision(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    session: AsyncSession,
    proof_of_service: Callable[..., Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 行政处罚法 Art. 44: the intended penalty and the holder's rights are told before deciding;
    # Art. 64(1): a hearing is asked for within 5 (working, Art. 85) days of the notice.
    licence_no = await issue(uscc=random_uscc())
    today = clock.today()
    url = f"/api/v1/licences/{licence_no}/penalty-notices"
    notice = {
        "penalty": "suspension",
        "legal_basis": PENALTY_BASIS,
        "reason": "违反食盐储存规定",
    }
    too_short = await client.post(
        url,
        json={**notice, "hearing_request_deadline": (today + timedelta(days=3)).isoformat()},
        headers=_approver(tokens),
    )
    assert too_short.status_code == 409
    assert problem(too_short)["code"] == "hearing_rights_not_respected"
    deadline = add_working_days(today, 5)  # the shortest lawful deadline (Arts. 64(1), 85)
    served = await client.post(
        url,
        json={**notice, "hearing_request_deadline": deadline.isoformat()},
        headers=_approver(tokens),
    )
    assert served.status_code == 200, served.text
    assert served.json()["status"] == "valid"  # a notice decides nothing
    event = await _one_event(session, licence_no, EventType.LICENCE_PENALTY_NOTIFIED)
    assert event.intended_penalty == "suspension" and event.rights_notified_on == today
    assert event.hearing_request_deadline == deadline
    history = (await _detail(client, tokens, licence_no))["history"]
    assert history[-1]["action"] == "penalty_notified"

    decision = {
        **_penalty(hearing="not_requested", hearing_held_on=None),
        "rights_notified_on": today.isoformat(),
        "hearing_request_deadline": deadline.isoformat(),
    }
    suspension = f"/api/v1/licences/{licence_no}/suspension"
    await proof_of_service(client, licence_no)
    early = await client.post(suspension, json=decision, headers=_approver(tokens))
    assert early.status_code == 409 and "期限届满前不得作出处罚决定" in problem(early)["detail"]
    monkeypatch.setattr(clock, "today", lambda: deadline + timedelta(days=1))
    decided = await client.post(suspension, json=decision, headers=_approver(tokens))
    assert decided.status_code == 200, decided.text
    assert decided.json()["act_details"]["hearing"] == "not_requested"


async def test_art64_silence_counts_only_after_the_notice_reached_the_holder(
    client: httpx.AsyncClient,
    tokens: Tokens,
    issue: Issue,
    serve_penalty_notice: ServeNotice,
    proof_of_service: Callable[..., Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """行政处罚法 Art. 64(1): a hearing is asked for within five (working, Art. 85) days after the
    holder is told. The notice recorded by the register is not yet the holder told: with no
    proof of service from notify (its relay down, the notice undelivered) a decision took the
    holder's silence as "not requested" once the stated deadline passed, and a notice delivered
    late left the holder fewer than the five days."""
    today = clock.today()
    licence_no = await issue(uscc=random_uscc())
    served = await serve_penalty_notice(client, licence_no, proved=False)
    deadline = served["hearing_request_deadline"]
    suspension = f"/api/v1/licences/{licence_no}/suspension"
    decision = _penalty(hearing="not_requested", hearing_held_on=None)
    del decision["rights_notified_on"]
    monkeypatch.setattr(clock, "today", lambda: deadline + timedelta(days=1))
    unserved = await client.post(suspension, json=decision, headers=_approver(tokens))
    assert unserved.status_code == 409, unserved.text
    assert problem(unserved)["code"] == "hearing_rights_not_respected"
    assert "送达" in problem(unserved)["detail"]
    assert (await _detail(client, tokens, licence_no))["status"] == "valid"

    # A copy delivered to staff is no service on the holder.
    await proof_of_service(client, licence_no, on=today, recipient="staff:310000:approver")
    copied = await client.post(suspension, json=decision, headers=_approver(tokens))
    assert problem(copied)["code"] == "hearing_rights_not_respected"

    # Delivered three working days after it was sent: five working days from then.
    delivered_on = add_working_days(today, 3)
    await proof_of_service(client, licence_no, on=delivered_on)
    last_day = add_working_days(delivered_on, 5)
    assert last_day > deadline
    monkeypatch.setattr(clock, "today", lambda: last_day)
    early = await client.post(suspension, json=decision, headers=_approver(tokens))
    assert early.status_code == 409, early.text
    assert f"当事人可在{last_day.isoformat()}前要求听证" in problem(early)["detail"]
    monkeypatch.setattr(clock, "today", lambda: last_day + timedelta(days=1))
    decided = await client.post(suspension, json=decision, headers=_approver(tokens))
    assert decided.status_code == 200, decided.text
    details = decided.json()["act_details"]
    assert details["notice_served_on"] == delivered_on.isoformat()
    assert details["hearing_request_deadline"] == deadline.isoformat()
