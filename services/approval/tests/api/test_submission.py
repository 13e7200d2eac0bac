"""Submitting an application: the platform's thin slice, through the real app."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import govshared.sqlbatch
from approval.catalogue.repository import ITEM_CACHE
from approval.clocks.calendar_cache import CALENDAR_CACHE
from approval.db import outbox_events
from approval.models import Application, ApplicationEvent
from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc

BODY = {
    "item_code": "JXW-XK-002",
    "business_type": "new",
    "applicant_name": "上海盐业示范有限公司",
    "form": {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200},
}


async def test_submission_writes_application_audit_and_event(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    response = await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(uscc))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "submitted"
    assert created["applicant_uscc"] == uscc
    assert created["item_name"] == "食盐定点批发企业审批"
    assert created["reform_mode"] == "optimize_service"
    assert created["application_no"].startswith("310000-")

    application_id = uuid.UUID(created["id"])
    assert await session.get(Application, application_id) is not None
    trail = (
        await session.scalars(
            select(ApplicationEvent).where(ApplicationEvent.application_id == application_id)
        )
    ).all()
    assert [e.action for e in trail] == ["submit"]
    rows = (
        await session.execute(
            select(outbox_events).where(
                outbox_events.c.event_id.in_(
                    select(outbox_events.c.event_id).where(
                        outbox_events.c.payload.contains(str(application_id))
                    )
                )
            )
        )
    ).all()
    # Notify tells the applicant; license tracks it (a renewal protects its licence, Art. 50).
    assert {r.destination for r in rows} == {"notify", "license"}
    envelope = json.loads(rows[0].payload)
    assert envelope["type"] == "cn.gov.approval.application.submitted.v1"
    assert envelope["specversion"] == "1.0"
    assert envelope["subject"] == str(application_id)
    assert envelope["data"]["applicant_uscc"] == uscc


async def test_idempotency_key_returns_first_result(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    headers = {**tokens.enterprise(uscc), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/api/v1/applications", json=BODY, headers=headers)
    again = await client.post("/api/v1/applications", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.applicant_uscc == uscc)
    )
    assert count == 1

    other_body = {**BODY, "applicant_name": "另一家公司"}
    reused = await client.post("/api/v1/applications", json=other_body, headers=headers)
    assert reused.status_code == 422
    assert problem(reused)["code"] == "idempotency_key_reused"


async def test_idempotency_key_is_declared_and_a_malformed_one_refused(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """The header is read from the request, not as a FastAPI parameter: OpenAPI still declares
    it on the submission and on every action, and a bad value is a 422 problem, nothing written."""
    spec = (await client.get("/openapi.json")).json()
    writes = [
        (path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method == "post"
        and path.startswith("/api/v1/applications")
        and "materials" not in path
        and "documents" not in path
        and "evaluation" not in path
        # A signing session is its own idempotency key (opened again, the same session comes
        # back), and a signed receipt is recorded once whatever the retries.
        and "signing-sessions" not in path
        and not path.endswith("/receipt")
    ]
    # the submission, the twelve actions and the review chain's six moves (claim, return,
    # transfer, complete, an opinion asked and overridden)
    assert len(writes) == 19
    for path, operation in writes:
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert [(p["name"], p["schema"]["maxLength"]) for p in headers] == [
            ("Idempotency-Key", 200)
        ], path
    uscc = random_uscc()
    for bad in ("x" * 201, "tab\tkey"):
        refused = await client.post(
            "/api/v1/applications",
            json=BODY,
            headers={**tokens.enterprise(uscc), "Idempotency-Key": bad},
        )
        assert problem(refused)["code"] == "validation_failed"
    mine = await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))
    assert mine.json()["items"] == []


async def test_same_key_of_another_enterprise_is_its_own(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    key = f"shared-{uuid.uuid4()}"
    a = await client.post(
        "/api/v1/applications",
        json=BODY,
        headers={**tokens.enterprise(random_uscc()), "Idempotency-Key": key},
    )
    b = await client.post(
        "/api/v1/applications",
        json=BODY,
        headers={**tokens.enterprise(random_uscc()), "Idempotency-Key": key},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_cancelled_item_is_refused_with_machine_readable_reason(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    response = await client.post(
        "/api/v1/applications",
        json={**BODY, "item_code": "JXW-QX-008"},
        headers=tokens.enterprise(uscc),
    )
    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "approval_cancelled"
    assert body["reason"] == "no_permit_needed"
    assert body["business_licence_suffices"] is True
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.applicant_uscc == uscc)
    )
    assert count == 0


async def test_unknown_item_and_bad_body(client: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.enterprise(random_uscc())
    unknown = await client.post(
        "/api/v1/applications", json={**BODY, "item_code": "NOPE"}, headers=headers
    )
    assert unknown.status_code == 404
    assert problem(unknown)["code"] == "item_not_found"

    bad = await client.post(
        "/api/v1/applications",
        json={"item_code": "", "business_type": "maybe", "applicant_name": "x"},
        headers=headers,
    )
    assert bad.status_code == 422
    body = problem(bad)
    assert body["code"] == "validation_failed"
    names = {p["name"] for p in body["invalid_params"]}  # type: ignore[union-attr]
    assert {"body.item_code", "body.business_type", "body.applicant_name"} <= names


async def test_auth_is_required_and_roles_enforced(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    anonymous = await client.post("/api/v1/applications", json=BODY)
    assert anonymous.status_code == 401
    assert problem(anonymous)["code"] == "unauthenticated"
    assert anonymous.headers["www-authenticate"] == "Bearer"

    forged = await client.post(
        "/api/v1/applications", json=BODY, headers={"Authorization": "Bearer not.a.token"}
    )
    assert forged.status_code == 401

    staff = await client.post(
        "/api/v1/applications", json=BODY, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert staff.status_code == 403
    assert problem(staff)["code"] == "forbidden"


async def test_an_enterprise_never_sees_another_enterprises_application(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    owner, other = random_uscc(), random_uscc()
    created = (
        await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(owner))
    ).json()
    path = f"/api/v1/applications/{created['id']}"

    assert (await client.get(path, headers=tokens.enterprise(owner))).status_code == 200
    stolen = await client.get(path, headers=tokens.enterprise(other))
    assert stolen.status_code == 404
    assert created["applicant_uscc"] not in stolen.text
    assert (await client.get(f"{path}/events", headers=tokens.enterprise(other))).status_code == 404

    listed = (await client.get("/api/v1/applications", headers=tokens.enterprise(other))).json()
    assert listed["items"] == []

    # Staff of another district cannot see a city-level (310000) application's district peers' data,
    # but city-wide staff can.
    assert (
        await client.get(path, headers=tokens.staff(Role.ACCEPTOR, "310000"))
    ).status_code == 200
    assert (
        await client.get(path, headers=tokens.staff(Role.ACCEPTOR, "320000"))
    ).status_code == 404


async def test_own_list_is_paginated_newest_first(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    ids = [
        (await client.post("/api/v1/applications", json=BODY, headers=headers)).json()["id"]
        for _ in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/applications", params=params, headers=headers)).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    bad = await client.get("/api/v1/applications", params={"cursor": "%%%"}, headers=headers)
    assert bad.status_code == 400


async def test_audit_trail_is_visible_to_the_applicant(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    created = (
        await client.post("/api/v1/applications", json=BODY, headers=tokens.enterprise(uscc))
    ).json()
    trail = await client.get(
        f"/api/v1/applications/{created['id']}/events", headers=tokens.enterprise(uscc)
    )
    assert trail.status_code == 200
    [entry] = trail.json()
    assert entry["action"] == "submit" and entry["to_state"] == "submitted"
    assert len(entry["hash"]) == 64


def _alone_spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each submission statement sent alone (True) or given back to the session (False)."""
    sent: list[bool] = []
    original = govshared.sqlbatch._execute_alone

    async def spying(session: Any, batch: Any) -> bool:
        done = await original(session, batch)
        sent.append(done)
        return done

    monkeypatch.setattr(govshared.sqlbatch, "_execute_alone", spying)
    return sent


@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "idempotency-key"])
async def test_a_submission_commits_the_same_way_whatever_the_caches_hold(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
    keyed: bool,
) -> None:
    """Cold caches read the item and the calendar; the reads end before the write, so the write
    is the same either way: on PostgreSQL one statement sent alone (the key's claim in it),
    committed as it completes; on SQLite the request's transaction."""
    sent = _alone_spy(monkeypatch)
    uscc = random_uscc()
    for warm in (False, True):
        if not warm:
            ITEM_CACHE.forget(str(BODY["item_code"]))
            CALENDAR_CACHE.invalidate(date.today().year)
        headers = tokens.enterprise(uscc)
        if keyed:
            headers["Idempotency-Key"] = f"k-{uuid.uuid4()}"
        created = await client.post("/api/v1/applications", json=BODY, headers=headers)
        assert created.status_code == 201, created.text
    on_postgresql = app.state.engine.dialect.name == "postgresql"
    assert sent == ([True, True] if on_postgresql else [])


async def test_concurrent_retries_with_one_key_make_one_application(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    """The second claim waits for the first statement, fails with it committed, and replays."""
    uscc = random_uscc()
    headers = {**tokens.enterprise(uscc), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/applications", json=BODY, headers=headers) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == [""] + ["true"] * 3
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.applicant_uscc == uscc)
    )
    assert count == 1


async def test_a_retry_after_the_guide_was_revised_gets_its_first_answer(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    """A client that lost the 201 retries with its key after the item's guide changed (a new
    required field): it gets its application back, not a refusal that would make it submit
    again under a new key."""
    admin = tokens.header(Role.ADMIN)
    base = (await client.get(f"/api/v1/items/{BODY['item_code']}")).json()
    code = f"JXW-T-{uuid.uuid4().hex[:6].upper()}"
    draft = {
        k: base[k]
        for k in (
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
    }
    created = await client.post("/api/v1/items", json={**draft, "code": code}, headers=admin)
    assert created.status_code == 201, created.text
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200
    uscc = random_uscc()
    headers = {**tokens.enterprise(uscc), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {**BODY, "item_code": code}
    first = await client.post("/api/v1/applications", json=body, headers=headers)
    assert first.status_code == 201, first.text

    revised = {**draft, "change_note": "增加必填字段"}
    revised["guide"] = {
        **draft["guide"],
        "form_fields": [
            *draft["guide"]["form_fields"],
            {"name": "safety_officer", "label": "安全负责人", "type": "string", "required": True},
        ],
    }
    assert (
        await client.put(f"/api/v1/items/{code}/draft", json=revised, headers=admin)
    ).status_code == 200
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).status_code == 200
    # A new request with this body is refused now ...
    fresh = await client.post("/api/v1/applications", json=body, headers=tokens.enterprise(uscc))
    assert fresh.status_code == 422, fresh.text
    # ... but the retry is the request that was accepted: its answer, as it was.
    again = await client.post("/api/v1/applications", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and again.json()["item_version"] == 1
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.applicant_uscc == uscc)
    )
    assert count == 1
