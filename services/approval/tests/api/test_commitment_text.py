"""One 告知承诺 text per item version: license's, served unchanged by the guide and signed at intake.

On PostgreSQL and SQLite. License's answers come from the stand-in of its contract, which serves the
very texts license ships (``LICENSE_TEXTS``); the cross-service test in the repository's
``tests/inprocess`` runs the real license.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from approval.catalogue.repository import ITEM_CACHE
from approval.context import context_of
from approval.models import Item
from approval.signing.config import dev_ca_directory
from govshared.auth import Role
from govshared.signing.phone import sign_commitment
from govshared.testing import Tokens, problem, random_uscc

from ..conftest import LICENSE_TEXTS

# What approval's own guide published for JXW-CN-011 before license's text was the only one.
OLD_GUIDE_TEXT = (
    "本单位郑重承诺：所申报的固定资产投资项目符合国家和本市节能法律法规、标准及产业政策要求，"
    "节能报告内容真实、准确、完整。如有虚假，愿承担撤销审查意见、纳入失信记录等法律责任。"
)
FORM = {"project_name": "临港数据中心项目", "annual_energy_tce": 8000}


def sha(text: str) -> str:
    """SHA-256 hex of a text."""
    return hashlib.sha256(text.encode()).hexdigest()


async def test_the_guide_serves_license_s_text_and_digest(client: httpx.AsyncClient) -> None:
    assert set(LICENSE_TEXTS) == {"JXW-CN-011", "JXW-CN-012"}
    for code, text in LICENSE_TEXTS.items():
        item = (await client.get(f"/api/v1/items/{code}")).json()
        assert item["guide"]["commitment_text"] == text
        assert item["commitment_text_sha256"] == sha(text)
        assert item["commitment_version"] == 1
    ordinary = (await client.get("/api/v1/items/JXW-XK-004")).json()
    assert ordinary["guide"]["commitment_text"] is None
    assert ordinary["commitment_text_sha256"] is None


async def test_no_other_copy_is_served(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/items", params={"q": "JXW-CN-011"})).json()["items"]
    assert listed and all(i["guide"]["commitment_text"] is None for i in listed)
    version = (await client.get("/api/v1/items/JXW-CN-011/versions/1")).json()
    assert version["guide"]["commitment_text"] is None


async def test_a_guide_keeps_no_commitment_text_of_its_own(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    base = (await client.get("/api/v1/items/JXW-CN-012")).json()
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
    code = f"JXW-T-{uuid.uuid4().hex[:6].upper()}"
    refused = await client.post(
        "/api/v1/items", json={**draft, "code": code}, headers=tokens.header(Role.ADMIN)
    )
    assert refused.status_code == 422 and problem(refused)["code"] == "validation_failed"
    assert "证照服务" in str(problem(refused)["invalid_params"])
    draft["guide"] = {**draft["guide"], "commitment_text": None}
    created = await client.post(
        "/api/v1/items", json={**draft, "code": code}, headers=tokens.header(Role.ADMIN)
    )
    assert created.status_code == 201, created.text


async def test_a_stored_copy_from_before_is_neither_served_nor_signed(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # A database written before the rule: the guide in force still holds its own, different text.
    async with app.state.sessionmaker() as session, session.begin():
        item = await session.get(Item, "JXW-CN-011")
        assert item is not None
        guide = {**item.guide, "commitment_text": OLD_GUIDE_TEXT}
        await session.execute(update(Item).where(Item.code == "JXW-CN-011").values(guide=guide))
    ITEM_CACHE.forget("JXW-CN-011")
    served = (await client.get("/api/v1/items/JXW-CN-011")).json()
    assert served["guide"]["commitment_text"] == LICENSE_TEXTS["JXW-CN-011"]

    uscc = random_uscc()
    body = {"item_code": "JXW-CN-011", "applicant_name": "上海承诺示范有限公司", "form": FORM}
    old = await client.post(
        "/api/v1/applications",
        json={**body, "sign_commitment": True, "commitment_text_sha256": sha(OLD_GUIDE_TEXT)},
        headers=tokens.enterprise(uscc),
    )
    assert old.status_code == 422 and problem(old)["code"] == "commitment_not_allowed"
    assert problem(old)["commitment_text_sha256"] == sha(LICENSE_TEXTS["JXW-CN-011"])
    session_id = await sign_commitment(
        client,
        headers=tokens.enterprise(uscc),
        uscc=uscc,
        item_code="JXW-CN-011",
        applicant_name="上海承诺示范有限公司",
        ca_directory=dev_ca_directory(app.state.settings.data_dir),
    )
    signed = await client.post(
        "/api/v1/applications",
        json={
            **body,
            "sign_commitment": True,
            "commitment_text_sha256": served["commitment_text_sha256"],
            "commitment_signing_session": session_id,
        },
        headers=tokens.enterprise(uscc),
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["state"] == "approved"


async def test_license_is_asked_with_no_transaction_open(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guide reads the item, ends its transaction (the connection goes back to the pool), and
    # only then waits on license: a slow license never holds a database connection or lock.
    license = context_of(app).license_client
    asked_with: list[int] = []
    original = license.reform_mode

    async def watching(**kwargs: Any) -> Any:
        asked_with.append(app.state.engine.pool.checkedout())
        return await original(**kwargs)

    monkeypatch.setattr(license, "reform_mode", watching)
    ITEM_CACHE.forget("JXW-CN-012")
    item = await client.get("/api/v1/items/JXW-CN-012")
    assert item.status_code == 200
    assert asked_with == [0]


async def test_intake_asks_license_with_no_transaction_open(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signing is checked against license's answer, fetched after the item read's transaction ended.
    license = context_of(app).license_client
    asked_with: list[int] = []
    mode, eligibility = license.reform_mode, license.commitment_eligibility

    async def watching_mode(**kwargs: Any) -> Any:
        asked_with.append(app.state.engine.pool.checkedout())
        return await mode(**kwargs)

    async def watching_eligibility(**kwargs: Any) -> Any:
        asked_with.append(app.state.engine.pool.checkedout())
        return await eligibility(**kwargs)

    uscc = random_uscc()
    session_id = await sign_commitment(
        client,
        headers=tokens.enterprise(uscc),
        uscc=uscc,
        item_code="JXW-CN-011",
        applicant_name="上海承诺示范有限公司",
        ca_directory=dev_ca_directory(app.state.settings.data_dir),
    )
    monkeypatch.setattr(license, "reform_mode", watching_mode)
    monkeypatch.setattr(license, "commitment_eligibility", watching_eligibility)
    ITEM_CACHE.forget("JXW-CN-011")
    signed = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-CN-011",
            "applicant_name": "上海承诺示范有限公司",
            "form": FORM,
            "sign_commitment": True,
            "commitment_text_sha256": sha(LICENSE_TEXTS["JXW-CN-011"]),
            "commitment_signing_session": session_id,
        },
        headers=tokens.enterprise(uscc),
    )
    assert signed.status_code == 201, signed.text
    assert asked_with == [0, 0]
