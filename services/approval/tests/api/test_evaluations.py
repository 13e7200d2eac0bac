"""好差评: once per closed case; a poor rating opens a remediation task for the jurisdiction."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc


async def all_tasks(
    client: httpx.AsyncClient, headers: dict[str, str], *, limit: int = 50, status: str = "open"
) -> list[dict[str, Any]]:
    """Every remediation task the caller sees, following ``next_cursor`` page by page."""
    tasks: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": limit, "status": status}
    while True:
        response = await client.get("/api/v1/remediation-tasks", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        tasks += page["items"]
        if page["next_cursor"] is None:
            return tasks
        params["cursor"] = page["next_cursor"]


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
    tasks = await all_tasks(client, staff)
    task = next(t for t in tasks if t["application_id"] == app_id)
    assert task["status"] == "open" and task["due_on"] == body["remediation_due_on"]
    elsewhere = await all_tasks(client, tokens.staff(Role.ACCEPTOR, "320000"))
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


async def test_remediation_tasks_are_keyset_paginated_earliest_due_first(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    mine = []
    for _ in range(3):
        uscc = random_uscc()
        app_id = await _closed_case(client, tokens, uscc)
        rated = await client.post(
            f"/api/v1/applications/{app_id}/evaluation",
            json={"rating": 1},
            headers=tokens.enterprise(uscc),
        )
        assert rated.status_code == 201, rated.text
        mine.append(app_id)
    staff = tokens.staff(Role.ACCEPTOR, "310000")
    one_by_one = await all_tasks(client, staff, limit=1)
    assert {t["application_id"] for t in one_by_one} >= set(mine)
    assert len({t["id"] for t in one_by_one}) == len(one_by_one), "no task on two pages"
    keys = [(t["due_on"], t["id"]) for t in one_by_one]
    assert keys == sorted(keys)
    assert one_by_one == await all_tasks(client, staff, limit=200)
    bad = await client.get(
        "/api/v1/remediation-tasks", params={"cursor": "nonsense"}, headers=staff
    )
    assert problem(bad)["code"] == "invalid_cursor"


async def _poor_rating_task(client: httpx.AsyncClient, tokens: Tokens) -> dict[str, Any]:
    """A closed case rated 1: its open remediation task."""
    uscc = random_uscc()
    app_id = await _closed_case(client, tokens, uscc)
    rated = await client.post(
        f"/api/v1/applications/{app_id}/evaluation",
        json={"rating": 1},
        headers=tokens.enterprise(uscc),
    )
    assert rated.status_code == 201, rated.text
    tasks = await all_tasks(client, tokens.staff(Role.ACCEPTOR, "310000"))
    return next(t for t in tasks if t["application_id"] == app_id)


async def test_a_resolved_remediation_task_keeps_its_resolution(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    staff = tokens.staff(Role.ACCEPTOR, "310000")
    task = await _poor_rating_task(client, tokens)
    url = f"/api/v1/remediation-tasks/{task['id']}/resolve"
    first = await client.post(url, json={"resolution": "已电话回访并改进"}, headers=staff)
    assert first.status_code == 200, first.text
    resolved = first.json()
    assert resolved["status"] == "resolved" and resolved["resolution"] == "已电话回访并改进"
    again = await client.post(url, json={"resolution": "改写后的整改情况"}, headers=staff)
    assert again.status_code == 409
    refused = problem(again)
    assert refused["code"] == "remediation_task_already_resolved"
    assert refused["title"] and refused["title_en"]
    listed = await all_tasks(client, staff, status="resolved")
    stored = next(t for t in listed if t["id"] == task["id"])
    assert stored == resolved  # the resolution and its time are the first resolve's


async def test_two_concurrent_resolves_of_a_task_one_wins(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    staff = tokens.staff(Role.ACCEPTOR, "310000")
    task = await _poor_rating_task(client, tokens)
    url = f"/api/v1/remediation-tasks/{task['id']}/resolve"
    texts = ["甲：已上门回访", "乙：已书面致歉"]
    answers = await asyncio.gather(
        *(client.post(url, json={"resolution": text}, headers=staff) for text in texts)
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    (winner,) = [a.json() for a in answers if a.status_code == 200]
    (loser,) = [problem(a) for a in answers if a.status_code == 409]
    assert loser["code"] == "remediation_task_already_resolved"
    listed = await all_tasks(client, staff, status="resolved")
    assert next(t for t in listed if t["id"] == task["id"]) == winner
