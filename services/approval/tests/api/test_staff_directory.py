"""The staff directory through the REST API, on PostgreSQL and SQLite (docs/review-chains.md):
the admin keeps it, staff read their jurisdiction's, and a transfer or a delegation goes only to
an active member of staff holding the task's role in its jurisdiction (and department)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc

from .test_review_chains import _case, _open, _post, _tasks, enrol, set_today, staff

__all__ = ["set_today"]  # the fixture, shared with test_review_chains


async def test_the_admin_keeps_the_directory_and_staff_read_their_jurisdictions(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    member = {"name": "李四", "role": "reviewer", "jurisdiction": "310115", "department": None}
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-dir")
    refused = await client.put("/api/v1/staff/members/pd-1", json=member, headers=reviewer)
    assert problem(refused)["status"] == 403
    admin = tokens.header(Role.ADMIN)
    for bad in ({**member, "role": "enterprise"}, {**member, "jurisdiction": "31000"}):
        invalid = await client.put("/api/v1/staff/members/pd-1", json=bad, headers=admin)
        assert problem(invalid)["status"] == 422
    put = await client.put("/api/v1/staff/members/pd-1", json=member, headers=admin)
    assert put.status_code == 200, put.text
    assert (put.json()["subject"], put.json()["active"]) == ("pd-1", True)
    # the city's staff see the district's; another province's do not
    city = (await client.get("/api/v1/staff/members?role=reviewer", headers=reviewer)).json()
    assert "pd-1" in {m["subject"] for m in city["items"]}
    other = tokens.header(Role.REVIEWER, jurisdiction="320000", subject="js-1")
    assert "pd-1" not in {
        m["subject"]
        for m in (await client.get("/api/v1/staff/members", headers=other)).json()["items"]
    }
    # the demo's staff are there for make run's tokens
    police = (await client.get("/api/v1/staff/members?department=SHGA", headers=reviewer)).json()[
        "items"
    ]
    assert {"police-1", "police-2"} <= {m["subject"] for m in police}


async def test_transfers_and_delegations_go_only_to_eligible_staff(
    client: httpx.AsyncClient, tokens: Tokens, set_today: Callable[[str], None]
) -> None:
    set_today("2021-09-17")
    app_id = await _case(client, tokens, random_uscc())
    reviewer = staff(tokens, Role.REVIEWER, "reviewer-e")
    await enrol(client, tokens, "approver-e", Role.APPROVER)
    await enrol(client, tokens, "safety-e", Role.REVIEWER, "SHYJ")
    await enrol(client, tokens, "police-e", Role.REVIEWER, "SHGA")
    admin = tokens.header(Role.ADMIN)
    away = {"name": "调离", "role": "reviewer", "jurisdiction": "310000", "active": False}
    assert (
        await client.put("/api/v1/staff/members/reviewer-gone", json=away, headers=admin)
    ).status_code == 200
    elsewhere = {"name": "外省", "role": "reviewer", "jurisdiction": "320000"}
    assert (
        await client.put("/api/v1/staff/members/reviewer-js", json=elsewhere, headers=admin)
    ).status_code == 200

    tasks = await _tasks(client, app_id, reviewer)
    step = _open(tasks, "first_review")
    opinion = next(t for t in tasks["items"] if t["department"] == "SHGA")
    path = f"{app_id}/tasks/{step['id']}/transfer"
    for target, code in (
        ("nobody-e", "staff_not_in_directory"),
        ("reviewer-gone", "staff_not_in_directory"),  # deactivated
        ("approver-e", "staff_not_eligible"),  # another role
        ("reviewer-js", "staff_not_eligible"),  # another jurisdiction
    ):
        answer = problem(await _post(client, path, reviewer, to=target))
        assert (answer["status"], answer["code"], answer["subject"]) == (422, code, target)
    police = staff(tokens, Role.REVIEWER, "police-f", "SHGA")
    wrong = await _post(
        client, f"{app_id}/tasks/{opinion['id']}/transfer", police, to="safety-e"
    )  # another department
    assert problem(wrong)["code"] == "staff_not_eligible"
    moved = await _post(client, f"{app_id}/tasks/{opinion['id']}/transfer", police, to="police-e")
    assert moved.json()["assignee"] == "police-e", moved.text
    trail = (await client.get(f"/api/v1/applications/{app_id}/events", headers=reviewer)).json()
    assert [e["action"] for e in trail].count("transfer_task") == 1  # refusals leave no trace

    leave = {"starts_on": "2021-09-20", "ends_on": "2021-09-24", "reason": "年休假"}
    for target, code in (
        ("nobody-e", "staff_not_in_directory"),
        ("approver-e", "staff_not_eligible"),
    ):
        refused = await client.post(
            "/api/v1/delegations", json={**leave, "delegate": target}, headers=reviewer
        )
        assert problem(refused)["code"] == code
    await enrol(client, tokens, "reviewer-e2", Role.REVIEWER)
    given = await client.post(
        "/api/v1/delegations", json={**leave, "delegate": "reviewer-e2"}, headers=reviewer
    )
    assert given.status_code == 201, given.text
