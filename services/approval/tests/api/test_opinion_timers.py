"""Overdue consulted opinions settled by the worker's timer, once, through the REST API on
PostgreSQL and SQLite (docs/review-chains.md): under the escalation rule the government head is
told and the approval waits for their decision; under deemed agreement the opinion counts as
agreement from its due date on, recorded once; the denial decision prints the opinion it cites.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.context import context_of
from approval.models import ApplicationEvent
from approval.worker import TimerWorker
from govshared.auth import Role
from govshared.events import EventType
from govshared.seal.pdf import extract_text
from govshared.testing import Tokens, problem, random_uscc

from .test_review_chains import (
    ESCALATING_CHAIN,
    D,
    _case,
    _events,
    _item,
    _open,
    _post,
    _tasks,
    set_today,
    staff,
)

__all__ = ["set_today"]  # the fixture, shared with test_review_chains


async def _trail(client: httpx.AsyncClient, app_id: str, headers: dict[str, str]) -> list[Any]:
    response = await client.get(f"/api/v1/applications/{app_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def _escalating_item(client: httpx.AsyncClient, tokens: Tokens) -> str:
    admin = tokens.header(Role.ADMIN)
    code = f"CHAIN-{uuid.uuid4().hex[:8].upper()}"
    created = await client.post("/api/v1/items", json=_item(code, ESCALATING_CHAIN), headers=admin)
    assert created.status_code == 201, created.text
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200
    return code


async def _reviewed_case(client: httpx.AsyncClient, tokens: Tokens, code: str) -> str:
    """A case of the escalating item, accepted on 09-17 (SHSW due 09-23) and at its decision."""
    created = await client.post(
        "/api/v1/applications",
        json={"item_code": code, "applicant_name": "上海并联示范有限公司"},
        headers=tokens.enterprise(random_uscc()),
    )
    assert created.status_code == 201, created.text
    app_id = str(created.json()["id"])
    assert (await _post(client, f"{app_id}/accept", tokens.staff(Role.ACCEPTOR))).status_code == 200
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-t")
    assert (await _post(client, f"{app_id}/review", reviewer, opinion="通过")).status_code == 200
    return app_id


async def test_an_overdue_opinion_is_escalated_to_the_government_head_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    set_today("2021-09-17")
    app_id = await _reviewed_case(client, tokens, await _escalating_item(client, tokens))
    approver = staff(tokens, Role.APPROVER, "approver-t")
    timers: TimerWorker = context_of(app).timers
    assert (await timers.run_once(today=D("2021-09-23"))).opinions_escalated == 0  # due today
    waiting = (await _tasks(client, app_id, approver))["items"]
    assert next(t for t in waiting if t["kind"] == "opinion")["escalated_at"] is None

    first = await timers.run_once(today=D("2021-09-24"))
    assert first.opinions_escalated >= 1
    assert (await timers.run_once(today=D("2021-09-27"))).opinions_escalated == 0  # once
    tasks = (await _tasks(client, app_id, approver))["items"]
    opinion = next(t for t in tasks if t["kind"] == "opinion")
    assert (opinion["status"], opinion["escalated_at"] is not None) == ("open", True)

    trail = await _trail(client, app_id, approver)
    [entry] = [e for e in trail if e["action"] == "escalate_opinion"]
    assert entry["actor_role"] == "service"  # the worker, not a member of staff
    assert entry["details"]["department"] == "SHSW"
    assert entry["details"]["rule"] == "escalation"
    verified = (
        await client.get(f"/api/v1/applications/{app_id}/events/verify", headers=approver)
    ).json()
    assert verified["valid"] is True
    [event] = await _events(session, app_id, EventType.APPLICATION_OPINION_ESCALATED)
    assert (event["details"]["role"], event["due_on"]) == ("government_head", "2021-09-23")

    # the approval still waits for the government head, who decides; then it goes ahead
    set_today("2021-09-27")
    blocked = problem(await _post(client, f"{app_id}/approve", approver, opinion="准予"))
    assert blocked["code"] == "opinion_escalated"
    head = staff(tokens, Role.GOVERNMENT_HEAD, "mayor-t")
    decided = await _post(
        client, f"{app_id}/opinions/{opinion['id']}/override", head, reason="经研究同意办理"
    )
    assert decided.status_code == 200, decided.text
    approved = await _post(client, f"{app_id}/approve", approver, opinion="准予")
    assert approved.json()["state"] == "approved", approved.text
    assert (await timers.run_once(today=D("2021-09-28"))).opinions_escalated == 0


async def test_two_timer_workers_escalate_each_overdue_opinion_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    set_today("2021-09-17")
    code = await _escalating_item(client, tokens)
    ids = [await _reviewed_case(client, tokens, code) for _ in range(4)]
    workers = [
        TimerWorker(
            sessionmaker=app.state.sessionmaker,
            outbox=context_of(app).outbox,
            warn_days=3,
            batch_size=1,
        )
        for _ in range(2)
    ]
    runs = await asyncio.gather(*(w.run_once(today=D("2021-09-24")) for w in workers))
    assert sum(r.opinions_escalated for r in runs) >= len(ids)
    for app_id in ids:
        assert len(await _events(session, app_id, EventType.APPLICATION_OPINION_ESCALATED)) == 1
        entries = await session.scalar(
            select(func.count()).where(
                ApplicationEvent.application_id == uuid.UUID(app_id),
                ApplicationEvent.action == "escalate_opinion",
            )
        )
        assert entries == 1


async def test_a_deemed_agreement_is_recorded_once_and_the_denial_prints_the_cited_opinion(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    tokens: Tokens,
    set_today: Callable[[str], None],
) -> None:
    """JXW-XK-006 deems a missing opinion agreement: the timer records it when the due date has
    passed, the decision lists it without deeming it again, and a late answer is refused. The
    不予行政许可决定书 names the disagreeing department, its opinion and its reasons."""
    set_today("2021-09-17")
    uscc = random_uscc()
    app_id = await _case(client, tokens, uscc)
    approver = staff(tokens, Role.APPROVER, "approver-d")
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-d")
    for who, step in ((reviewer, "first_review"), (approver, "second_review")):
        task = _open(await _tasks(client, app_id, who), step)
        done = await _post(client, f"{app_id}/tasks/{task['id']}/complete", who, opinion="通过")
        assert done.status_code == 200, done.text
    safety = staff(tokens, Role.REVIEWER, "safety-d", "SHYJ")
    disagreed = await _post(
        client, f"{app_id}/opinions", safety, opinion="disagree", reasons="选址不符合安全距离要求"
    )
    assert disagreed.status_code == 200, disagreed.text

    timers: TimerWorker = context_of(app).timers
    assert (await timers.run_once(today=D("2021-10-08"))).opinions_deemed == 0  # the due date
    assert (await timers.run_once(today=D("2021-10-11"))).opinions_deemed >= 1
    await timers.run_once(today=D("2021-10-12"))
    set_today("2021-10-12")
    police = staff(tokens, Role.REVIEWER, "police-d", "SHGA")
    late = problem(
        await _post(client, f"{app_id}/opinions", police, opinion="disagree", reasons="迟")
    )
    assert late["code"] == "opinion_already_given" and "视为同意" in str(late["detail"])

    denied = await _post(client, f"{app_id}/deny", approver, reason="不符合行业规划")
    assert denied.json()["state"] == "denied", denied.text
    trail = await _trail(client, app_id, approver)
    [deemed] = [e for e in trail if e["action"] == "deem_opinion"]
    assert (deemed["details"]["department"], deemed["details"]["rule"]) == (
        "SHGA",
        "deemed_agreement",
    )
    decision = next(e for e in trail if e["action"] == "deny")
    assert "deemed_agreement" not in decision["details"]  # deemed once, by the timer
    assert {o["department"]: o["outcome"] for o in decision["details"]["opinions"]} == {
        "SHGA": "deemed_agreement",
        "SHYJ": "disagree",
    }
    assert len(await _events(session, app_id, EventType.APPLICATION_OPINION_DEEMED)) == 1

    # the denial decision prints the opinion it cites (Art. 38(2)), in its content and its PDF
    applicant = tokens.enterprise(uscc)
    documents = (
        await client.get(f"/api/v1/applications/{app_id}/documents", headers=applicant)
    ).json()["items"]
    [denial] = [d for d in documents if d["kind"] == "denial"]
    cited = "上海市应急管理局出具不同意意见，理由：选址不符合安全距离要求"
    assert cited in "".join(denial["content"]["paragraphs"])
    assert (await context_of(app).sealer.run_once()).sealed >= 1
    pdf = await client.get(
        f"/api/v1/applications/{app_id}/documents/{denial['id']}/pdf", headers=applicant
    )
    assert pdf.status_code == 200, pdf.text
    text = "".join(extract_text(pdf.content).split())
    assert cited in text and "第二十六条第二款" in text
