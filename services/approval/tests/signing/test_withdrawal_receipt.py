"""Withdrawal and the 送达回证 are signed on the phone; the receipt is the case's proof of service."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from approval.context import context_of
from govshared.signing.devca import DevCA
from govshared.signing.phone import answer
from govshared.testing import problem

ITEM = "JXW-CN-011"
FORM = {"project_name": "临港数据中心项目", "annual_energy_tce": 8000}


async def sign_session(
    client: httpx.AsyncClient, phone: Any, application_id: str, purpose: str
) -> dict[str, Any]:
    opened = await client.post(
        f"/api/v1/applications/{application_id}/signing-sessions",
        json={"purpose": purpose},
        headers=phone.headers,
    )
    assert opened.status_code == 201, opened.text
    return dict(opened.json())


async def ordinary_application(client: httpx.AsyncClient, phone: Any) -> str:
    submitted = await client.post(
        "/api/v1/applications",
        json={"item_code": ITEM, "applicant_name": phone.name, "form": FORM},
        headers=phone.headers,
    )
    assert submitted.status_code == 201 and submitted.json()["state"] == "submitted"
    return str(submitted.json()["id"])


async def trail(client: httpx.AsyncClient, phone: Any, application_id: str) -> list[Any]:
    response = await client.get(
        f"/api/v1/applications/{application_id}/events", headers=phone.headers
    )
    return list(response.json())


async def test_a_withdrawal_must_be_signed(
    client: httpx.AsyncClient, phone: Any, ca: DevCA, crl_fresh: Any
) -> None:
    application_id = await ordinary_application(client, phone)
    url = f"/api/v1/applications/{application_id}/withdraw"
    bare = await client.post(url, json={"reason": "不再需要"}, headers=phone.headers)
    assert bare.status_code == 422 and problem(bare)["code"] == "signature_required"

    session = await sign_session(client, phone, application_id, "withdrawal")
    # A seal revoked by its CA cannot sign it.
    revoked = ca.issue_seal(uscc=phone.uscc, name=phone.name)
    ca.revoke(revoked.serial)
    crl_fresh()
    refused = await client.post(
        f"/api/v1/signing-sessions/{session['id']}/signature",
        json=answer(
            session, private_key=revoked.private_key, certificate_pem=revoked.certificate_pem
        ),
        headers=phone.headers,
    )
    assert refused.status_code == 422 and problem(refused)["code"] == "certificate_revoked"
    assert (await phone.sign(client, session)).status_code == 200
    withdrawn = await client.post(
        url, json={"reason": "不再需要", "signing_session": session["id"]}, headers=phone.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    [*_, entry] = await trail(client, phone, application_id)
    assert entry["action"] == "withdraw"
    assert entry["details"]["withdrawal_signature"]["signing_session"] == session["id"]


async def test_the_signed_receipt_of_a_decision_joins_the_trail(
    client: httpx.AsyncClient, phone: Any, app: FastAPI
) -> None:
    commitment = (
        await client.post(
            "/api/v1/signing-sessions",
            json={"item_code": ITEM, "applicant_name": phone.name},
            headers=phone.headers,
        )
    ).json()
    assert (await phone.sign(client, commitment)).status_code == 200
    decided = await client.post(
        "/api/v1/applications",
        json={
            "item_code": ITEM,
            "applicant_name": phone.name,
            "form": FORM,
            "commitment_signing_session": commitment["id"],
        },
        headers=phone.headers,
    )
    assert decided.json()["state"] == "approved"
    application_id = decided.json()["id"]
    # No receipt before the decision is sealed and in effect.
    early = await client.post(
        f"/api/v1/applications/{application_id}/signing-sessions",
        json={"purpose": "receipt"},
        headers=phone.headers,
    )
    assert early.status_code == 422 and problem(early)["code"] == "signing_purpose_not_allowed"
    assert (await context_of(app).sealer.run_once()).sealed >= 1

    session = await sign_session(client, phone, application_id, "receipt")
    documents = (
        await client.get(f"/api/v1/applications/{application_id}/documents", headers=phone.headers)
    ).json()["items"]
    # The decision, and beside it the applicant's own signed commitment letter.
    assert sorted(d["kind"] for d in documents) == ["approval", "commitment"]
    [document] = [d for d in documents if d["kind"] == "approval"]
    assert f'"document_number":"{document["number"]}"' in session["content"]
    assert f'"document_pdf_sha256":"{document["pdf_sha256"]}"' in session["content"]
    receipt_url = f"/api/v1/applications/{application_id}/receipt"
    unsigned = await client.post(
        receipt_url, json={"signing_session": session["id"]}, headers=phone.headers
    )
    assert problem(unsigned)["code"] == "signature_required"
    assert (await phone.sign(client, session)).status_code == 200
    served = await client.post(
        receipt_url, json={"signing_session": session["id"]}, headers=phone.headers
    )
    assert served.status_code == 200, served.text
    again = await client.post(
        receipt_url, json={"signing_session": session["id"]}, headers=phone.headers
    )
    assert again.status_code == 200
    entries = await trail(client, phone, application_id)
    receipts = [e for e in entries if e["action"] == "receipt_signed"]
    assert len(receipts) == 1  # the retry added nothing
    details = receipts[0]["details"]
    assert details["document_number"] == document["number"]
    assert details["signer"] == f"{phone.name}（统一社会信用代码 {phone.uscc}）"
    assert details["proof_of_service"].startswith("送达回证")
    verified = await client.get(
        f"/api/v1/applications/{application_id}/events/verify", headers=phone.headers
    )
    assert verified.json()["valid"] is True
