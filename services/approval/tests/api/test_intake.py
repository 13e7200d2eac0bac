"""Intake follows the reform mode: filing receipts, commitment decisions, form validation."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI

from approval.signing.config import dev_ca_directory
from govshared.signing.phone import sign_commitment
from govshared.testing import Tokens, problem, random_uscc


async def test_filing_item_gets_an_immediate_receipt(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    response = await client.post(
        "/api/v1/applications",
        json={"item_code": "JXW-BA-010", "applicant_name": "上海再生资源示范有限公司"},
        headers=tokens.enterprise(uscc),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "filed" and body["intake_route"] == "filing"
    assert body["receipt_no"].startswith("BA")
    trail = (
        await client.get(
            f"/api/v1/applications/{body['id']}/events", headers=tokens.enterprise(uscc)
        )
    ).json()
    assert [e["action"] for e in trail] == ["submit", "file"]


async def test_commitment_route_decides_at_once(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    guide = (await client.get("/api/v1/items/JXW-CN-011")).json()["guide"]
    digest = hashlib.sha256(guide["commitment_text"].encode()).hexdigest()
    form = {"project_name": "临港数据中心项目", "annual_energy_tce": 8000}
    # The letter is signed on the phone with the enterprise's electronic seal, then submitted.
    session_id = await sign_commitment(
        client,
        headers=tokens.enterprise(uscc),
        uscc=uscc,
        item_code="JXW-CN-011",
        applicant_name="上海临港示范有限公司",
        ca_directory=dev_ca_directory(app.state.settings.data_dir),
    )
    response = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-CN-011",
            "applicant_name": "上海临港示范有限公司",
            "form": form,
            "sign_commitment": True,
            "commitment_text_sha256": digest,
            "commitment_signing_session": session_id,
        },
        headers=tokens.enterprise(uscc),
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "approved"
    assert response.json()["intake_route"] == "commitment"
    trail = await client.get(
        f"/api/v1/applications/{response.json()['id']}/events", headers=tokens.enterprise(uscc)
    )
    decided = trail.json()[-1]
    assert decided["to_state"] == "approved"
    # The licence is issued with the form's 许可事项 (the guide's ``particular`` fields).
    assert decided["details"]["particulars"] == {
        "项目名称": "临港数据中心项目",
        "年综合能源消费量（吨标准煤）": 8000,
    }

    # without signing, the same item goes to ordinary review
    ordinary = await client.post(
        "/api/v1/applications",
        json={"item_code": "JXW-CN-011", "applicant_name": "上海临港示范有限公司", "form": form},
        headers=tokens.enterprise(uscc),
    )
    assert ordinary.json()["state"] == "submitted"

    wrong_text = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-CN-011",
            "applicant_name": "某公司",
            "form": form,
            "sign_commitment": True,
            "commitment_text_sha256": "0" * 64,
        },
        headers=tokens.enterprise(uscc),
    )
    assert problem(wrong_text)["code"] == "commitment_not_allowed"

    # Ticking the box and quoting the text's hash is no longer a commitment (电子签名法 第十四条).
    unsigned = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-CN-011",
            "applicant_name": "上海临港示范有限公司",
            "form": form,
            "sign_commitment": True,
            "commitment_text_sha256": digest,
        },
        headers=tokens.enterprise(uscc),
    )
    assert unsigned.status_code == 422 and problem(unsigned)["code"] == "signature_required"


async def test_barred_enterprise_cannot_use_commitment(
    client: httpx.AsyncClient, tokens: Tokens, barred: set[str]
) -> None:
    uscc = random_uscc()
    barred.add(uscc)
    response = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-CN-012",
            "applicant_name": "失信示范有限公司",
            "sign_commitment": True,
        },
        headers=tokens.enterprise(uscc),
    )
    body = problem(response)
    assert response.status_code == 422 and body["code"] == "commitment_not_allowed"
    assert body["reasons"] == ["曾作出虚假承诺"]


async def test_commitment_only_where_the_reform_allows_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post(
        "/api/v1/applications",
        json={"item_code": "JXW-XK-004", "applicant_name": "某化工公司", "sign_commitment": True},
        headers=tokens.enterprise(random_uscc()),
    )
    assert problem(response)["code"] == "commitment_not_allowed"


async def test_form_is_validated_against_the_guide(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-XK-002",
            "applicant_name": "上海盐业示范有限公司",
            "form": {"warehouse_area": "很大", "colour": "red"},
        },
        headers=tokens.enterprise(random_uscc()),
    )
    body = problem(response)
    assert body["code"] == "form_invalid"
    names = {p["name"] for p in body["invalid_params"]}  # type: ignore[union-attr]
    assert names == {"form.warehouse_address", "form.warehouse_area", "form.colour"}
