"""A review chain's new work reaches the right staff inbox, once (approval's review chains)."""

from __future__ import annotations

import uuid

import httpx

from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, random_uscc

from ..conftest import application_event, post_events


def _staff(tokens: Tokens, role: Role, sub: str, department: str | None = None) -> dict[str, str]:
    claims: dict[str, str] = {"jurisdiction": "310000", "subject": sub}
    if department:
        claims["department"] = department
    return tokens.header(role, **claims)


async def _titles(client: httpx.AsyncClient, headers: dict[str, str], marker: str) -> list[str]:
    response = await client.get("/api/v1/inbox", headers=headers)
    assert response.status_code == 200, response.text
    return [m["title"] for m in response.json()["items"] if marker in m["body"]]


async def test_task_notices_reach_the_assignee_the_department_or_the_role_once(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    marker = f"310000-20211012-{uuid.uuid4().hex[:8].upper()}"
    common = {"application_no": marker, "item_name": "民用爆炸物品生产许可"}
    department = f"D{uuid.uuid4().hex[:6].upper()}"
    events = [
        application_event(
            EventType.APPLICATION_TASK_OPENED,
            uscc,
            details={"step": "first_review", "step_name": "初审", "role": "reviewer"},
            **common,
        ),
        application_event(
            EventType.APPLICATION_OPINION_REQUESTED,
            uscc,
            due_on="2021-10-08",
            details={
                "department": department,
                "department_name": "上海市公安局",
                "role": "reviewer",
            },
            **common,
        ),
        application_event(
            EventType.APPLICATION_TASK_TRANSFERRED,
            uscc,
            reason="休假",
            details={
                "step_name": "初审",
                "role": "reviewer",
                "assignee": f"c-{marker}",
                "delegates": [f"d-{marker}"],
            },
            **common,
        ),
        application_event(
            EventType.APPLICATION_TASK_RETURNED,
            uscc,
            reason="请重新初审",
            details={"to_step_name": "初审", "role": "reviewer", "assignee": f"a-{marker}"},
            **common,
        ),
    ]
    assert (await post_events(client, tokens, events)).json()["accepted"] == 4
    assert (await post_events(client, tokens, events)).json()["duplicates"] == 4  # exactly once

    anyone = _staff(tokens, Role.REVIEWER, f"x-{marker}")
    assert await _titles(client, anyone, marker) == ["新任务待办理：民用爆炸物品生产许可（初审）"]
    police = _staff(tokens, Role.REVIEWER, f"p-{marker}", department)
    assert "征求意见：民用爆炸物品生产许可" in await _titles(client, police, marker)
    transferred = await _titles(client, _staff(tokens, Role.REVIEWER, f"c-{marker}"), marker)
    assert "转办任务：民用爆炸物品生产许可（初审）" in transferred
    assert "转办任务：民用爆炸物品生产许可（初审）" in await _titles(
        client, _staff(tokens, Role.REVIEWER, f"d-{marker}"), marker
    )
    returned = await _titles(client, _staff(tokens, Role.REVIEWER, f"a-{marker}"), marker)
    assert "办件退回：民用爆炸物品生产许可（退回至初审）" in returned
    # the applicant is told none of the internal steps
    enterprise = await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))
    assert enterprise.json()["items"] == []


async def test_an_escalated_opinion_reaches_the_government_head_once(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Past a consulted department's due date under the escalation rule, the jurisdiction's
    government head is told the approval waits for them; a deemed agreement tells no one."""
    uscc = random_uscc()
    marker = f"310000-20211012-{uuid.uuid4().hex[:8].upper()}"
    common = {"application_no": marker, "item_name": "民用爆炸物品生产许可"}
    opinion = {"department": "SHSW", "department_name": "上海市商务委员会"}
    events = [
        application_event(
            EventType.APPLICATION_OPINION_ESCALATED,
            uscc,
            due_on="2021-09-23",
            details={**opinion, "rule": "escalation", "role": "government_head"},
            **common,
        ),
        application_event(
            EventType.APPLICATION_OPINION_DEEMED,
            uscc,
            due_on="2021-09-23",
            details={**opinion, "rule": "deemed_agreement"},
            **common,
        ),
    ]
    assert (await post_events(client, tokens, events)).json()["accepted"] == 2
    assert (await post_events(client, tokens, events)).json()["duplicates"] == 2  # exactly once

    mayor = _staff(tokens, Role.GOVERNMENT_HEAD, f"mayor-{marker}")
    response = await client.get("/api/v1/inbox", headers=mayor)
    [notice] = [m for m in response.json()["items"] if marker in m["body"]]
    assert notice["title"] == "逾期未答复，待您决定：民用爆炸物品生产许可"
    assert "上海市商务委员会未在2021年9月23日前出具会签意见" in notice["body"]
    assert "本级人民政府负责人作出决定" in notice["body"]
    # the department's reviewers and the applicant are not told
    for headers in (
        _staff(tokens, Role.REVIEWER, f"r-{marker}", "SHSW"),
        _staff(tokens, Role.APPROVER, f"a-{marker}"),
    ):
        assert await _titles(client, headers, marker) == []
    enterprise = await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))
    assert enterprise.json()["items"] == []
