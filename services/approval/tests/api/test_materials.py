"""Materials: uploads checked by size and real content type, hashed, stored; e-licences instead."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from approval.config import Settings
from approval.context import context_of
from approval.main import create_app
from approval.models import Material
from govshared.auth import Role
from govshared.testing import Tokens, blank_pdf, problem, random_uscc

PDF = blank_pdf()
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 500
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


async def _application(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> str:
    created = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-XK-002",
            "applicant_name": "上海盐业示范有限公司",
            "form": {"warehouse_address": "上海市", "warehouse_area": 100},
        },
        headers=tokens.enterprise(uscc),
    )
    return str(created.json()["id"])


async def _count(app: FastAPI, app_id: str) -> int:
    async with app.state.sessionmaker() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(Material)
                .where(Material.application_id == __import__("uuid").UUID(app_id))
            )
            or 0
        )


async def test_upload_download_and_checklist(client: httpx.AsyncClient, tokens: Tokens) -> None:
    uscc = random_uscc()
    app_id = await _application(client, tokens, uscc)
    base = f"/api/v1/applications/{app_id}/materials"
    before = (await client.get(base, headers=tokens.enterprise(uscc))).json()
    assert not before["complete"] and "仓储设施证明材料" in before["missing_required"]
    uploaded = await client.post(
        base,
        data={"name": "仓储设施证明材料"},
        files={"file": ("仓储证明.pdf", PDF, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest() and body["size"] == len(PDF)
    assert body["content_type"] == "application/pdf"
    content = await client.get(f"{base}/{body['id']}/content", headers=tokens.staff(Role.ACCEPTOR))
    assert content.content == PDF
    assert (
        await client.get(f"{base}/{body['id']}/content", headers=tokens.enterprise(random_uscc()))
    ).status_code == 404
    after = (await client.get(base, headers=tokens.enterprise(uscc))).json()
    assert "仓储设施证明材料" not in after["missing_required"]


async def test_disguised_and_unknown_uploads_are_415_and_store_nothing(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    app_id = await _application(client, tokens, uscc)
    base = f"/api/v1/applications/{app_id}/materials"
    disguised = await client.post(
        base,
        data={"name": "仓储设施证明材料"},
        files={"file": ("证明.pdf", EXE, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert disguised.status_code == 415 and problem(disguised)["code"] == "unsupported_media_type"
    mismatched = await client.post(
        base,
        data={"name": "仓储设施证明材料"},
        files={"file": ("证明.pdf", PNG, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert problem(mismatched)["detected"] == "image/png"
    wrong_name = await client.post(
        base,
        data={"name": "不存在的材料"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
        headers=tokens.enterprise(uscc),
    )
    assert problem(wrong_name)["code"] == "material_not_in_guide"
    assert await _count(app, app_id) == 0


async def test_oversize_upload_is_413_and_stores_nothing(
    client: httpx.AsyncClient,
    settings_factory: Callable[..., Settings],
    tokens: Tokens,
    app: FastAPI,
) -> None:
    uscc = random_uscc()
    app_id = await _application(client, tokens, uscc)
    small = create_app(settings_factory(max_upload_bytes=len(PDF) - 1))
    async with small.router.lifespan_context(small):
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as limited:
            response = await limited.post(
                f"/api/v1/applications/{app_id}/materials",
                data={"name": "仓储设施证明材料"},
                files={"file": ("big.pdf", PDF, "application/pdf")},
                headers=tokens.enterprise(uscc),
            )
    assert response.status_code == 413 and problem(response)["code"] == "payload_too_large"
    assert await _count(app, app_id) == 0


async def test_material_satisfied_by_a_held_e_licence(
    client: httpx.AsyncClient, tokens: Tokens, held_licences: dict[str, list[str]]
) -> None:
    uscc = random_uscc()
    app_id = await _application(client, tokens, uscc)
    base = f"/api/v1/applications/{app_id}/materials"
    none_held = await client.post(
        f"{base}/from-licence", json={"name": "营业执照"}, headers=tokens.enterprise(uscc)
    )
    assert problem(none_held)["code"] == "no_valid_licence"
    held_licences[uscc] = ["business_licence"]
    satisfied = await client.post(
        f"{base}/from-licence", json={"name": "营业执照"}, headers=tokens.enterprise(uscc)
    )
    assert satisfied.status_code == 201
    assert satisfied.json()["source"] == "e_licence" and satisfied.json()["licence_no"].startswith(
        "SH-"
    )
    not_replaceable = await client.post(
        f"{base}/from-licence", json={"name": "仓储设施证明材料"}, headers=tokens.enterprise(uscc)
    )
    assert problem(not_replaceable)["code"] == "no_valid_licence"


async def test_license_is_asked_for_licences_with_no_transaction_open(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    held_licences: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checks read, end their read, then ask license; the material is recorded afterwards
    against the application as it is then (the guard would fail the call otherwise)."""
    uscc = random_uscc()
    app_id = await _application(client, tokens, uscc)
    held_licences[uscc] = ["business_licence"]
    license = context_of(app).license_client
    asked_with: list[int] = []
    original = license.valid_licences

    async def watching(**kwargs: Any) -> Any:
        asked_with.append(app.state.engine.pool.checkedout())
        return await original(**kwargs)

    monkeypatch.setattr(license, "valid_licences", watching)
    satisfied = await client.post(
        f"/api/v1/applications/{app_id}/materials/from-licence",
        json={"name": "营业执照"},
        headers=tokens.enterprise(uscc),
    )
    assert satisfied.status_code == 201, satisfied.text
    assert asked_with == [0]
    assert await _count(app, app_id) == 1
