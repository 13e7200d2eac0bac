"""Inspection evidence is stored with no database transaction open, and recorded only if the
inspection is still open once the file is stored (a result recorded meanwhile closes it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from govshared.auth import Role
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.context import context_of
from licensing.inspections.models import Inspection, InspectionEvidence, InspectionStatus

FreshApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def plan_body() -> dict[str, Any]:
    today = clock.today()
    return {
        "name": "食盐专营许可双随机抽查",
        "item_codes": ["JXW-XK-001", "JXW-XK-002"],
        "jurisdiction": "310000",
        "period_from": today.isoformat(),
        "period_to": (today + timedelta(days=90)).isoformat(),
        "ratios": {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0},
        "inspectors": ["执法人员甲", "执法人员乙", "执法人员丙"],
    }


async def _one_inspection(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, issuer: Callable[..., Any]
) -> str:
    await issuer(client, tokens, app)(uscc=random_uscc(), applicant_name="示范盐业有限公司")
    approver = tokens.staff(Role.APPROVER, "310000")
    created = await client.post("/api/v1/inspection-plans", json=plan_body(), headers=approver)
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    drawn = await client.post(f"/api/v1/inspection-plans/{plan_id}/draw", headers=approver)
    assert drawn.status_code == 200, drawn.text
    listed = await client.get(f"/api/v1/inspections?plan={plan_id}", headers=approver)
    return str(listed.json()["items"][0]["id"])


async def _evidence_rows(app: FastAPI, inspection_id: str) -> int:
    async with app.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(InspectionEvidence)
            .where(InspectionEvidence.inspection_id == uuid.UUID(inspection_id))
        )
        return int(count or 0)


async def test_a_result_recorded_while_the_file_was_stored_refuses_the_evidence(
    fresh_app: FreshApp,
    issuer: Callable[..., Any],
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_app() as (app, client):
        inspection_id = await _one_inspection(app, client, tokens, issuer)
        storage = context_of(app).evidence_storage
        put = storage.put

        async def recorded_meanwhile(key: str, data: bytes, *, content_type: str) -> None:
            await put(key, data, content_type=content_type)
            # Another request records the result while the file travels: it can, as this one
            # holds no transaction (on SQLite it would otherwise wait for the write lock).
            async with app.state.sessionmaker() as other, other.begin():
                await other.execute(
                    update(Inspection)
                    .where(Inspection.id == uuid.UUID(inspection_id))
                    .values(status=InspectionStatus.RECORDED.value)
                )

        monkeypatch.setattr(storage, "put", recorded_meanwhile)
        refused = await client.post(
            f"/api/v1/inspections/{inspection_id}/evidence",
            files={"file": ("现场检查记录.png", PNG, "image/png")},
            headers=tokens.staff(Role.REVIEWER, "310000"),
        )
        assert refused.status_code == 409, refused.text
        assert problem(refused)["code"] == "inspection_already_recorded"
        assert await _evidence_rows(app, inspection_id) == 0


async def test_evidence_is_stored_and_listed_with_the_inspection(
    fresh_app: FreshApp, issuer: Callable[..., Any], tokens: Tokens
) -> None:
    async with fresh_app() as (app, client):
        inspection_id = await _one_inspection(app, client, tokens, issuer)
        reviewer = tokens.staff(Role.REVIEWER, "310000")
        added = await client.post(
            f"/api/v1/inspections/{inspection_id}/evidence",
            files={"file": ("现场检查记录.png", PNG, "image/png")},
            headers=reviewer,
        )
        assert added.status_code == 201, added.text
        assert added.json()["content_type"] == "image/png"
        detail = await client.get(f"/api/v1/inspections/{inspection_id}", headers=reviewer)
        assert [e["id"] for e in detail.json()["evidence"]] == [added.json()["id"]]
        assert await _evidence_rows(app, inspection_id) == 1
