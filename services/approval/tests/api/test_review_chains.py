"""Review chains and 并联审批 through the REST API, on PostgreSQL and SQLite (docs/review-chains.md).

JXW-XK-006 (民用爆炸物品生产许可) is handled jointly (联合办理, Art. 42(2): 45 working days) and its
guide declares 受理 → 初审 (reviewer) → 复审 (approver) → 审批 (approver), consulting the public
security bureau (SHGA) and the emergency management bureau (SHYJ), ten working days each. Dates are
in 2021, whose official calendar is seeded (中秋 09-19..21, 09-18 and 09-26 worked, 国庆 10-01..07).
"""

from __future__ import annotations

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
from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc

EXPLOSIVES = "JXW-XK-006"
D = date.fromisoformat


@pytest.fixture
def set_today(app: FastAPI) -> Iterator[Callable[[str], None]]:
    """Set the service's China date; restored after the test."""
    today = context_of(app).today

    def setter(day: str) -> None:
        today.pin(D(day))

    yield setter
    today.pin(None)


def staff(tokens: Tokens, role: Role, sub: str, department: str | None = None) -> dict[str, str]:
    claims: dict[str, Any] = {"jurisdiction": "310000", "subject": sub}
    if department:
        claims["department"] = department
    return tokens.header(role, **claims)


async def enrol(
    client: httpx.AsyncClient,
    tokens: Tokens,
    subject: str,
    role: Role,
    department: str | None = None,
) -> None:
    """Put a member of staff in the directory (transfers and delegations go only to them)."""
    member = {"name": subject, "role": role, "jurisdiction": "310000", "department": department}
    put = await client.put(
        f"/api/v1/staff/members/{subject}", json=member, headers=tokens.header(Role.ADMIN)
    )
    assert put.status_code == 200, put.text


async def _case(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> str:
    created = await client.post(
        "/api/v1/applications",
        json={"item_code": EXPLOSIVES, "applicant_name": "上海爆破器材示范有限公司"},
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    app_id = str(created.json()["id"])
    accepted = await client.post(
        f"/api/v1/applications/{app_id}/accept",
        json={"tolerated_materials": required_materials(EXPLOSIVES), "deliver_by": "2099-12-31"},
        headers=tokens.staff(Role.ACCEPTOR),
    )
    assert accepted.status_code == 200, accepted.text
    return app_id


async def _tasks(client: httpx.AsyncClient, app_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"/api/v1/applications/{app_id}/tasks", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _open(tasks: dict[str, Any], step: str) -> dict[str, Any]:
    return next(t for t in tasks["items"] if t["step"] == step and t["status"] == "open")


async def _post(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(f"/api/v1/applications/{path}", json=body, headers=headers)


async def _events(
    session: AsyncSession, app_id: str, event_type: EventType
) -> list[dict[str, Any]]:
    payloads = (
        await session.execute(
            select(outbox_events.c.payload)
            .where(
                outbox_events.c.event_type == str(event_type),
                outbox_events.c.destination == "notify",
            )
            # in the order they were written: without ORDER BY PostgreSQL returns heap order,
            # which an UPDATE of a row (the relay marking it delivered) changes
            .order_by(outbox_events.c.created_at, outbox_events.c.id)
        )
    ).scalars()
    events = [p if isinstance(p, dict) else json.loads(p) for p in payloads]
    return [e["data"] for e in events if e["subject"] == app_id]


async def test_a_joint_case_goes_through_its_chain_and_two_departments_opinions(
    client: httpx.AsyncClient,
    tokens: Tokens,
    session: AsyncSession,
    set_today: Callable[[str], None],
) -> None:
    """初审 and 复审, returned once, two departments' opinions in parallel (one after a transfer),
    decided within the 45-working-day clock; every move in the hash-chained trail."""
    guide = (await client.get(f"/api/v1/items/{EXPLOSIVES}")).json()["guide"]
    assert [s["name"] for s in guide["review_chain"]["steps"]] == ["受理", "初审", "复审", "审批"]
    uscc = random_uscc()
    applicant = tokens.enterprise(uscc)
    set_today("2021-09-17")
    app_id = await _case(client, tokens, uscc)
    reviewer_a = staff(tokens, Role.REVIEWER, "reviewer-a")
    reviewer_b = staff(tokens, Role.REVIEWER, "reviewer-b")
    reviewer_c = staff(tokens, Role.REVIEWER, "reviewer-c")
    approver = staff(tokens, Role.APPROVER, "approver-x")
    police_1 = staff(tokens, Role.REVIEWER, "police-1", "SHGA")
    police_2 = staff(tokens, Role.REVIEWER, "police-2", "SHGA")
    safety = staff(tokens, Role.REVIEWER, "safety-1", "SHYJ")
    await enrol(client, tokens, "reviewer-c", Role.REVIEWER)
    await enrol(client, tokens, "police-2", Role.REVIEWER, "SHGA")

    tasks = await _tasks(client, app_id, reviewer_a)
    assert tasks["current_step"] == "first_review"
    opinions = {t["department"]: t for t in tasks["items"] if t["kind"] == "opinion"}
    # ten working days from 09-17: 09-18 (worked Saturday), 09-22..24, 09-26..30, 10-08
    assert {d: t["due_on"] for d, t in opinions.items()} == {
        "SHGA": "2021-10-08",
        "SHYJ": "2021-10-08",
    }
    # the applicant sees no staff tasks; the queues: the step for its role, an opinion for its
    # department, earliest statutory due date first
    assert (
        await client.get(f"/api/v1/applications/{app_id}/tasks", headers=applicant)
    ).status_code == 403
    queue = (await client.get("/api/v1/staff/tasks", headers=reviewer_a)).json()["items"]
    assert app_id in {t["application_id"] for t in queue if t["step"] == "first_review"}
    assert all(t["kind"] == "step" for t in queue)
    police_queue = (await client.get("/api/v1/staff/tasks", headers=police_1)).json()["items"]
    mine = [t for t in police_queue if t["application_id"] == app_id]
    assert [t["kind"] for t in mine] == ["opinion", "step"]  # 10-08 before the case's 11-25
    dues = [t["statutory_due_on"] for t in police_queue]
    assert dues == sorted(dues)

    # no step is skipped: no decision, no review by the wrong role
    assert problem(await _post(client, f"{app_id}/approve", approver, opinion="同意"))["code"] == (
        "review_required"
    )
    assert (await _post(client, f"{app_id}/review", approver, opinion="看过")).status_code == 403

    # 初审: A claims it, B cannot take it, A completes it
    first = _open(tasks, "first_review")
    claimed = await _post(client, f"{app_id}/tasks/{first['id']}/claim", reviewer_a)
    assert claimed.json()["assignee"] == "reviewer-a", claimed.text
    taken = await _post(client, f"{app_id}/tasks/{first['id']}/complete", reviewer_b, opinion="可")
    assert problem(taken)["code"] == "task_assigned_to_another"
    done = await _post(
        client, f"{app_id}/tasks/{first['id']}/complete", reviewer_a, opinion="材料真实，初审通过"
    )
    assert done.status_code == 200 and done.json()["state"] == "in_review", done.text

    # 复审 returns the case to 初审, to whoever completed it
    tasks = await _tasks(client, app_id, approver)
    second = _open(tasks, "second_review")
    to_acceptance = await _post(
        client,
        f"{app_id}/tasks/{second['id']}/return",
        approver,
        to_step="acceptance",
        reason="重新受理",
    )
    assert problem(to_acceptance)["code"] == "task_move_invalid"
    returned = await _post(
        client,
        f"{app_id}/tasks/{second['id']}/return",
        approver,
        to_step="first_review",
        reason="安全评价报告结论与现场核查不一致，请重新初审",
    )
    assert returned.json()["status"] == "returned", returned.text
    tasks = await _tasks(client, app_id, reviewer_a)
    again = _open(tasks, "first_review")
    assert tasks["current_step"] == "first_review" and again["assignee"] == "reviewer-a"
    skipped = await _post(client, f"{app_id}/approve", approver, opinion="同意")
    assert problem(skipped)["code"] == "chain_step_pending"  # in_review, but 初审 is to be redone
    assert (
        problem(
            await _post(client, f"{app_id}/tasks/{second['id']}/complete", approver, opinion="x")
        )["code"]
        == "task_closed"
    )

    # A transfers it to C; only C may now complete it
    moved = await _post(
        client, f"{app_id}/tasks/{again['id']}/transfer", reviewer_a, to="reviewer-c", reason="休假"
    )
    assert moved.json()["assignee"] == "reviewer-c", moved.text
    assert (
        problem(
            await _post(client, f"{app_id}/tasks/{again['id']}/complete", reviewer_a, opinion="x")
        )["code"]
        == "task_assigned_to_another"
    )
    redone = await _post(
        client, f"{app_id}/tasks/{again['id']}/complete", reviewer_c, opinion="已核实，初审通过"
    )
    assert redone.status_code == 200, redone.text
    second = _open(await _tasks(client, app_id, approver), "second_review")
    done = await _post(
        client, f"{app_id}/tasks/{second['id']}/complete", approver, opinion="复审通过"
    )
    assert done.status_code == 200, done.text
    tasks = await _tasks(client, app_id, approver)
    assert tasks["current_step"] == "decision"

    # the decision waits for both departments
    set_today("2021-09-28")
    waiting = problem(await _post(client, f"{app_id}/approve", approver, opinion="同意"))
    assert (waiting["code"], sorted(waiting["departments"])) == (
        "opinions_pending",
        ["SHGA", "SHYJ"],
    )

    # SHGA's task goes to a colleague of the same department, who agrees with conditions
    police_task = opinions["SHGA"]
    assert (
        await _post(client, f"{app_id}/tasks/{police_task['id']}/claim", police_1)
    ).status_code == 200
    moved = await _post(
        client, f"{app_id}/tasks/{police_task['id']}/transfer", police_1, to="police-2"
    )
    assert moved.status_code == 200, moved.text
    refused = await _post(client, f"{app_id}/opinions", police_1, opinion="agree")
    assert problem(refused)["code"] == "task_assigned_to_another"
    conditional = await _post(client, f"{app_id}/opinions", police_2, opinion="conditional")
    assert problem(conditional)["code"] == "task_move_invalid"
    given = await _post(
        client,
        f"{app_id}/opinions",
        police_2,
        opinion="conditional",
        conditions="库房须安装视频监控并与公安机关联网",
    )
    assert given.json()["outcome"] == "conditional", given.text
    again_given = await _post(client, f"{app_id}/opinions", police_2, opinion="agree")
    assert problem(again_given)["code"] == "opinion_already_given"
    stranger = staff(tokens, Role.REVIEWER, "other-1", "SHSW")
    assert (
        problem(await _post(client, f"{app_id}/opinions", stranger, opinion="agree"))["code"]
        == "department_not_consulted"
    )

    # SHYJ disagrees, with reasons: no approval until the government head decides over it
    assert (
        await _post(client, f"{app_id}/opinions", safety, opinion="disagree")
    ).status_code == 422
    dissent = await _post(
        client, f"{app_id}/opinions", safety, opinion="disagree", reasons="安全距离不足"
    )
    assert dissent.status_code == 200, dissent.text
    blocked = problem(await _post(client, f"{app_id}/approve", approver, opinion="同意"))
    assert (blocked["code"], blocked["departments"]) == ("dissent_unresolved", ["SHYJ"])
    head = staff(tokens, Role.GOVERNMENT_HEAD, "mayor")
    assert (
        await _post(
            client, f"{app_id}/opinions/{opinions['SHGA']['id']}/override", head, reason="x" * 3
        )
    ).status_code == 409  # an agreement needs no override
    overridden = await _post(
        client,
        f"{app_id}/opinions/{opinions['SHYJ']['id']}/override",
        head,
        reason="经组织专家论证，安全距离符合国家标准要求",
    )
    assert overridden.json()["override_reason"].startswith("经组织专家论证"), overridden.text

    set_today("2021-10-12")
    decision = _open(await _tasks(client, app_id, approver), "decision")
    approved = await _post(
        client,
        f"{app_id}/tasks/{decision['id']}/complete",
        approver,
        opinion="准予许可",
        decision="approve",
    )
    assert approved.json()["state"] == "approved", approved.text
    clocks = (await client.get(f"/api/v1/applications/{app_id}/clocks", headers=applicant)).json()
    decision_clock = next(c for c in clocks["clocks"] if c["kind"] == "decision")
    assert decision_clock["budget_days"] == 45 and decision_clock["due_on"] == "2021-11-25"
    assert D("2021-10-12") <= D(decision_clock["due_on"])

    # every move is in the hash-chained trail, the decision citing the opinions
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=applicant)).json()
    actions = [e["action"] for e in trail]
    for move in (
        "open_task",
        "request_opinion",
        "claim_task",
        "return_task",
        "transfer_task",
        "give_opinion",
        "override_opinion",
        "review",
        "approve",
    ):
        assert move in actions, move
    assert actions.count("review") == 3  # 初审, 初审 again after the return, 复审
    approval_entry = trail[actions.index("approve")]
    assert {o["department"]: o["outcome"] for o in approval_entry["details"]["opinions"]} == {
        "SHGA": "conditional",
        "SHYJ": "disagree",
    }
    verified = (
        await client.get(f"/api/v1/applications/{app_id}/events/verify", headers=applicant)
    ).json()
    assert verified["valid"] is True

    # the staff concerned are told through notify: the new task, the return, the transfer and
    # each department's request
    requested = await _events(session, app_id, EventType.APPLICATION_OPINION_REQUESTED)
    assert sorted(e["details"]["department"] for e in requested) == ["SHGA", "SHYJ"]
    returns = await _events(session, app_id, EventType.APPLICATION_TASK_RETURNED)
    assert [e["details"]["assignee"] for e in returns] == ["reviewer-a"]
    transfers = await _events(session, app_id, EventType.APPLICATION_TASK_TRANSFERRED)
    assert sorted(e["details"]["assignee"] for e in transfers) == ["police-2", "reviewer-c"]
    opened = await _events(session, app_id, EventType.APPLICATION_TASK_OPENED)
    assert [e["details"]["step"] for e in opened] == [
        "first_review",
        "second_review",
        "second_review",
        "decision",
    ]


async def test_a_denial_cites_the_disagreement_and_a_missing_opinion_is_deemed_agreement(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """A disagreement with reasons leads to a denial citing it; an opinion not given by its due
    date counts as agreement (the demo catalogue's rule)."""
    set_today("2021-09-17")
    approver = staff(tokens, Role.APPROVER, "approver-y")
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-y")
    cases = [await _case(client, tokens, random_uscc()) for _ in range(2)]
    for app_id in cases:
        for who, step in ((reviewer, "first_review"), (approver, "second_review")):
            task = _open(await _tasks(client, app_id, who), step)
            done = await _post(client, f"{app_id}/tasks/{task['id']}/complete", who, opinion="通过")
            assert done.status_code == 200, done.text
    denied_case, deemed_case = cases
    safety = staff(tokens, Role.REVIEWER, "safety-2", "SHYJ")
    await _post(
        client, f"{denied_case}/opinions", safety, opinion="disagree", reasons="选址不符合规划"
    )
    set_today("2021-10-11")  # past both due dates (10-08)
    denied = await _post(client, f"{denied_case}/deny", approver, reason="不符合行业规划")
    assert denied.json()["state"] == "denied", denied.text
    trail = (
        await client.get(f"/api/v1/applications/{denied_case}/events", headers=approver)
    ).json()
    entry = next(e for e in trail if e["action"] == "deny")
    assert entry["details"]["cited_opinions"][0]["reasons"] == "选址不符合规划"
    assert entry["details"]["deemed_agreement"] == ["SHGA"]

    approved = await _post(client, f"{deemed_case}/approve", approver, opinion="准予许可")
    assert approved.json()["state"] == "approved", approved.text
    tasks = (await _tasks(client, deemed_case, approver))["items"]
    assert {t["outcome"] for t in tasks if t["kind"] == "opinion"} == {"deemed_agreement"}


async def test_a_delegate_handles_the_tasks_of_a_colleague_on_leave_until_revoked(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    set_today("2021-09-17")
    app_id = await _case(client, tokens, random_uscc())
    holder = staff(tokens, Role.REVIEWER, "reviewer-leave")
    delegate = staff(tokens, Role.REVIEWER, "reviewer-cover")
    await enrol(client, tokens, "reviewer-cover", Role.REVIEWER)
    task = _open(await _tasks(client, app_id, holder), "first_review")
    keyed = {**holder, "Idempotency-Key": f"claim-{task['id']}"}
    first = await _post(client, f"{app_id}/tasks/{task['id']}/claim", keyed)
    retried = await _post(client, f"{app_id}/tasks/{task['id']}/claim", keyed)
    assert first.status_code == retried.status_code == 200, first.text
    assert retried.headers.get("Idempotent-Replayed") == "true" and retried.json() == first.json()
    assert (
        problem(
            await _post(client, f"{app_id}/tasks/{task['id']}/complete", delegate, opinion="x")
        )["code"]
        == "task_assigned_to_another"
    )

    given = await client.post(
        "/api/v1/delegations",
        json={
            "delegate": "reviewer-cover",
            "starts_on": "2021-09-17",
            "ends_on": "2021-09-30",
            "reason": "年休假",
        },
        headers=holder,
    )
    assert given.status_code == 201, given.text
    queue = (await client.get("/api/v1/staff/tasks", headers=delegate)).json()["items"]
    assert any(t["id"] == task["id"] and t["assignee"] == "reviewer-leave" for t in queue)
    listed = (await client.get("/api/v1/delegations", headers=delegate)).json()["items"]
    assert [d["id"] for d in listed] == [given.json()["id"]]

    revoked = await client.post(f"/api/v1/delegations/{given.json()['id']}/revoke", headers=holder)
    assert revoked.json()["revoked_by"] == "reviewer-leave", revoked.text
    assert (
        problem(
            await _post(client, f"{app_id}/tasks/{task['id']}/complete", delegate, opinion="x")
        )["code"]
        == "task_assigned_to_another"
    )

    again = await client.post(
        "/api/v1/delegations",
        json={
            "delegate": "reviewer-cover",
            "starts_on": "2021-09-17",
            "ends_on": "2021-09-30",
            "reason": "病假",
        },
        headers=holder,
    )
    assert again.status_code == 201
    done = await _post(
        client, f"{app_id}/tasks/{task['id']}/complete", delegate, opinion="代为初审"
    )
    assert done.status_code == 200, done.text
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=holder)).json()
    review = next(e for e in trail if e["action"] == "review")
    assert review["details"]["on_behalf_of"] == "reviewer-leave"
    assert review["details"]["delegation_id"] == again.json()["id"]


def _item(code: str, chain: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    guide: dict[str, Any] = {
        "legal_basis": [{"law": "《中华人民共和国行政许可法》", "articles": "第二十六条第二款"}],
        "implementing_authority": "上海市经济和信息化委员会",
        "deciding_authority": "上海市经济和信息化委员会",
        "eligible_applicants": "企业",
        "conditions": {"new": "符合条件"},
        "result_type": "许可证",
        "effective_from": "2021-01-01",
        "joint_handling": "unified",
        "review_chain": chain,
    }
    return {
        "code": code,
        "name": "并联审批测试事项",
        "item_type": "行政许可",
        "authority": "上海市经济和信息化委员会",
        "jurisdiction": "310000",
        "statutory_limit_days": 45,
        "committed_limit_days": 30,
        "guide": guide,
        **changes,
    }


ESCALATING_CHAIN = {
    "steps": [
        {"key": "acceptance", "name": "受理", "kind": "accept", "role": "acceptor"},
        {"key": "review", "name": "审查", "kind": "review", "role": "reviewer"},
        {"key": "decision", "name": "审批", "kind": "decide", "role": "approver"},
    ],
    "consultations": [{"department": "SHSW", "name": "上海市商务委员会", "working_days": 3}],
    "missing_opinion": "escalation",
}


async def test_a_chain_without_a_review_step_is_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """受理 straight to 审批 would leave an accepted case that can be neither reviewed nor
    decided: the catalogue refuses such a chain."""
    accept, _review, decide = ESCALATING_CHAIN["steps"]  # type: ignore[misc]
    chain = {"steps": [accept, decide]}
    code = f"CHAIN-{uuid.uuid4().hex[:8].upper()}"
    refused = await client.post(
        "/api/v1/items", json=_item(code, chain), headers=tokens.header(Role.ADMIN)
    )
    assert refused.status_code == 422, refused.text


async def test_a_published_chain_binds_the_cases_of_its_version_and_escalates_a_missing_opinion(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """The catalogue publishes chains with its versions; under the escalation rule an overdue
    opinion holds the approval until the government head decides."""
    admin = tokens.header(Role.ADMIN)
    code = f"CHAIN-{uuid.uuid4().hex[:8].upper()}"
    not_joint = _item(code, ESCALATING_CHAIN)
    del not_joint["guide"]["joint_handling"]
    for refused in (not_joint, _item(code, ESCALATING_CHAIN, is_instant=True)):
        assert (
            problem(await client.post("/api/v1/items", json=refused, headers=admin))["status"]
            == 422
        )
    assert (
        await client.post("/api/v1/items", json=_item(code, ESCALATING_CHAIN), headers=admin)
    ).status_code == 201
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200

    set_today("2021-09-17")
    uscc = random_uscc()

    async def submit_and_accept() -> str:
        created = await client.post(
            "/api/v1/applications",
            json={"item_code": code, "applicant_name": "上海并联示范有限公司"},
            headers=tokens.enterprise(uscc),
        )
        assert created.status_code == 201, created.text
        app_id = str(created.json()["id"])
        accepted = await _post(client, f"{app_id}/accept", tokens.staff(Role.ACCEPTOR))
        assert accepted.status_code == 200, accepted.text
        return app_id

    chained = await submit_and_accept()
    # version 2 drops the chain: a case submitted under it follows the plain lifecycle
    revised = {k: v for k, v in _item(code, None).items() if k != "code"}
    assert (
        await client.put(f"/api/v1/items/{code}/draft", json=revised, headers=admin)
    ).status_code == 200
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200
    plain = await submit_and_accept()
    approver = staff(tokens, Role.APPROVER, "approver-z")
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-z")
    assert (await _post(client, f"{plain}/review", reviewer, opinion="通过")).status_code == 200
    assert (await _post(client, f"{plain}/approve", approver, opinion="准予")).status_code == 200
    assert (await _tasks(client, plain, approver))["items"] == []

    review = await _post(client, f"{chained}/review", reviewer, opinion="通过")
    assert review.status_code == 200, review.text
    tasks = await _tasks(client, chained, approver)
    opinion = next(t for t in tasks["items"] if t["kind"] == "opinion")
    assert (tasks["current_step"], opinion["due_on"]) == ("decision", "2021-09-23")
    head = staff(tokens, Role.GOVERNMENT_HEAD, "mayor-z")
    early = await _post(client, f"{chained}/opinions/{opinion['id']}/override", head, reason="急需")
    assert problem(early)["code"] == "nothing_to_override"  # not overdue yet
    set_today("2021-09-24")
    escalated = problem(await _post(client, f"{chained}/approve", approver, opinion="准予"))
    assert (escalated["code"], escalated["departments"]) == ("opinion_escalated", ["SHSW"])
    decided = await _post(
        client,
        f"{chained}/opinions/{opinion['id']}/override",
        head,
        reason="逾期未答复，经研究同意办理",
    )
    assert decided.json()["outcome"] == "missing", decided.text
    approved = await _post(client, f"{chained}/approve", approver, opinion="准予")
    assert approved.json()["state"] == "approved", approved.text


async def test_a_case_deemed_accepted_enters_its_chain(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """Art. 32(4): past its acceptance period the case is accepted by law; it then starts its
    chain as if accepted by staff, and the first action on it is the first review step's."""
    set_today("2021-09-17")
    uscc = random_uscc()
    created = await client.post(
        "/api/v1/applications",
        json={"item_code": EXPLOSIVES, "applicant_name": "上海视为受理示范有限公司"},
        headers=tokens.enterprise(uscc),
    )
    app_id = str(created.json()["id"])
    set_today("2021-09-29")  # five working days ran out on 09-26
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-deemed")
    reviewed = await _post(client, f"{app_id}/review", reviewer, opinion="初审通过")
    assert reviewed.json()["state"] == "in_review", reviewed.text
    tasks = await _tasks(client, app_id, reviewer)
    acceptance = next(t for t in tasks["items"] if t["step"] == "acceptance")
    assert (acceptance["status"], acceptance["completed_by"]) == ("done", "system")
    assert tasks["current_step"] == "second_review"
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=reviewer)).json()
    assert [e["action"] for e in trail][1:4] == ["deemed_accept", "open_task", "request_opinion"]


async def test_a_completed_step_retried_with_its_key_gets_its_first_answer(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    """A reviewer whose answer to ``complete`` was lost retries with the same Idempotency-Key: the
    step was completed, and the retry gets that first answer back (replayed), not a 409 saying the
    task is no longer the current step, which read as a failure and had the reviewer act again."""
    set_today("2021-09-17")
    app_id = await _case(client, tokens, random_uscc())
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-retry")
    task = _open(await _tasks(client, app_id, reviewer), "first_review")
    keyed = {**reviewer, "Idempotency-Key": f"complete-{task['id']}"}
    path = f"{app_id}/tasks/{task['id']}/complete"
    first = await _post(client, path, keyed, opinion="材料真实，初审通过")
    assert first.status_code == 200 and first.json()["state"] == "in_review", first.text
    retried = await _post(client, path, keyed, opinion="材料真实，初审通过")
    assert retried.status_code == 200, retried.text
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert retried.json() == first.json()
    # One review recorded, not two; the chain moved on once.
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=reviewer)).json()
    assert [e["action"] for e in trail].count("review") == 1
    assert (await _tasks(client, app_id, reviewer))["current_step"] == "second_review"
    # The same key with another body is still refused (the first answer stands).
    changed = await _post(client, path, keyed, opinion="另一意见")
    assert problem(changed)["code"] == "idempotency_key_reused"
    # The same key sent to complete another task is that task's request, not a replay of the
    # first task's answer: a task not yet current is refused as such.
    other = next(
        t for t in (await _tasks(client, app_id, reviewer))["items"] if t["id"] != task["id"]
    )
    elsewhere = await _post(
        client, f"{app_id}/tasks/{other['id']}/complete", keyed, opinion="材料真实，初审通过"
    )
    assert elsewhere.headers.get("Idempotent-Replayed") != "true"
    assert elsewhere.status_code in (403, 409), elsewhere.text
