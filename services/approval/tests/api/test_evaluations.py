"""好差评: once per closed case; a poor rating opens a remediation task for the jurisdiction."""

from __future__ import annotations

from datetime import date

import httpx

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc


async def _closed_case(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> str:
    created = await client.post(
        "/api/v1/applications",
        json={"item_code": "JXW-BA-009", "applicant_name": "上海化工备案示范有限公司"},
        headers=tokens.enterprise(uscc),
    )
    assert created.json()["state"] == "filed"
    return str(created.json()["id"])


async def test_rating_once_and_poor_rating_opens_task(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    app_id = await _closed_case(client, tokens, uscc)
    path = f"/api/v1/applications/{app_id}/evaluation"
    assert (
        await client.post(path, json={"rating": 1}, headers=tokens.enterprise(random_uscc()))
    ).status_code == 404
    assert (
        await client.post(path, json={"rating": 1}, headers=tokens.staff(Role.ACCEPTOR))
    ).status_code == 403
    assert (
        problem(await client.post(path, json={"rating": 6}, headers=tokens.enterprise(uscc)))[
            "status"
        ]
        == 422
    )

    rated = await client.post(
        path,
        json={"rating": 2, "indicators": {"timeliness": 1, "attitude": 3}, "comment": "等了很久"},
        headers=tokens.enterprise(uscc),
    )
    assert rated.status_code == 201, rated.text
    body = rated.json()
    assert body["rating_label"] == "不满意"
    due = date.fromisoformat(body["remediation_due_on"])
    assert due > date.today()
    again = await client.post(path, json={"rating": 5}, headers=tokens.enterprise(uscc))
    assert problem(again)["code"] == "already_evaluated"

    staff = tokens.staff(Role.ACCEPTOR, "310000")
    tasks = (await client.get("/api/v1/remediation-tasks", headers=staff)).json()
    task = next(t for t in tasks if t["application_id"] == app_id)
    assert task["status"] == "open" and task["due_on"] == body["remediation_due_on"]
    elsewhere = (
        await client.get("/api/v1/remediation-tasks", headers=tokens.staff(Role.ACCEPTOR, "320000"))
    ).json()
    assert all(t["application_id"] != app_id for t in elsewhere)
    resolved = await client.post(
        f"/api/v1/remediation-tasks/{task['id']}/resolve",
        json={"resolution": "已电话回访并改进"},
        headers=staff,
    )
    assert resolved.json()["status"] == "resolved"
    stats = (await client.get("/api/v1/evaluations/statistics", headers=staff)).json()
    assert stats["evaluations"] >= 1 and stats["poor_ratings"] >= 1


async def test_open_case_cannot_be_rated_and_good_rating_opens_no_task(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    open_case = await client.post(
        "/api/v1/applications",
        json={"item_code": "JXW-XK-004", "applicant_name": "某化工公司"},
        headers=tokens.enterprise(uscc),
    )
    early = await client.post(
        f"/api/v1/applications/{open_case.json()['id']}/evaluation",
        json={"rating": 5},
        headers=tokens.enterprise(uscc),
    )
    assert problem(early)["code"] == "case_not_closed"
    app_id = await _closed_case(client, tokens, uscc)
    good = await client.post(
        f"/api/v1/applications/{app_id}/evaluation",
        json={"rating": 5},
        headers=tokens.enterprise(uscc),
    )
    assert good.json()["remediation_due_on"] is None
