"""告知承诺 needs a signed commitment letter: signed on the phone, decided at once; else refused."""

from __future__ import annotations

from typing import Any

import httpx

from govshared.testing import Tokens, problem, random_uscc

ITEM = "JXW-CN-011"
FORM = {"project_name": "临港数据中心项目", "annual_energy_tce": 8000}


async def open_and_sign(client: httpx.AsyncClient, phone: Any, name: str | None = None) -> str:
    session = (
        await client.post(
            "/api/v1/signing-sessions",
            json={"item_code": ITEM, "applicant_name": name or phone.name},
            headers=phone.headers,
        )
    ).json()
    signed = await phone.sign(client, session)
    assert signed.status_code == 200, signed.text
    return str(session["id"])


async def submit(
    client: httpx.AsyncClient, phone: Any, session_id: str | None, **extra: object
) -> httpx.Response:
    body: dict[str, object] = {
        "item_code": ITEM,
        "applicant_name": phone.name,
        "form": FORM,
        "sign_commitment": True,
        **extra,
    }
    if session_id is not None:
        body["commitment_signing_session"] = session_id
    return await client.post("/api/v1/applications", json=body, headers=phone.headers)


async def test_a_signed_commitment_is_decided_at_once_and_the_signature_is_in_the_trail(
    client: httpx.AsyncClient, phone: Any
) -> None:
    session_id = await open_and_sign(client, phone)
    response = await submit(client, phone, session_id)
    assert response.status_code == 201, response.text
    application = response.json()
    assert application["state"] == "approved" and application["intake_route"] == "commitment"
    trail = (
        await client.get(f"/api/v1/applications/{application['id']}/events", headers=phone.headers)
    ).json()
    decision = trail[-1]
    assert decision["action"] == "commitment_decision"
    evidence = decision["details"]["commitment_signature"]
    assert evidence["signing_session"] == session_id
    assert evidence["signer"] == f"{phone.name}（统一社会信用代码 {phone.uscc}）"
    assert len(evidence["signature"]) == 128
    session = (
        await client.get(f"/api/v1/signing-sessions/{session_id}", headers=phone.headers)
    ).json()
    assert session["status"] == "consumed"

    # The same signed letter cannot carry a second application.
    again = await submit(client, phone, session_id)
    assert again.status_code == 409 and problem(again)["code"] == "signing_session_replayed"


async def test_a_retry_with_its_idempotency_key_is_not_a_replay(
    client: httpx.AsyncClient, phone: Any
) -> None:
    session_id = await open_and_sign(client, phone)
    headers = {**phone.headers, "Idempotency-Key": f"commit-{session_id}"}
    body = {
        "item_code": ITEM,
        "applicant_name": phone.name,
        "form": FORM,
        "sign_commitment": True,
        "commitment_signing_session": session_id,
    }
    first = await client.post("/api/v1/applications", json=body, headers=headers)
    second = await client.post("/api/v1/applications", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]


async def test_unsigned_or_wrongly_signed_commitments_are_refused(
    client: httpx.AsyncClient, phone: Any, tokens: Tokens
) -> None:
    # A box ticked, no signature.
    bare = await submit(client, phone, None)
    assert bare.status_code == 422 and problem(bare)["code"] == "signature_required"
    # A session opened but never signed.
    opened = (
        await client.post(
            "/api/v1/signing-sessions",
            json={"item_code": ITEM, "applicant_name": phone.name},
            headers=phone.headers,
        )
    ).json()
    unsigned = await submit(client, phone, opened["id"])
    assert problem(unsigned)["code"] == "signature_required"
    # A wrong signature never makes a session signed, so the application is refused too.
    wrong = await client.post(
        f"/api/v1/signing-sessions/{opened['id']}/signature",
        json=phone.answer(opened, signature="1" * 128),
        headers=phone.headers,
    )
    assert problem(wrong)["code"] == "signature_invalid"
    assert problem(await submit(client, phone, opened["id"]))["code"] == "signature_required"
    # A letter signed under another applicant name does not cover this application.
    other_name = await open_and_sign(client, phone, name="上海另一示范有限公司")
    assert problem(await submit(client, phone, other_name))["code"] == "signature_required"
    # Another enterprise cannot use this one's signed letter.
    mine = await open_and_sign(client, phone)
    stranger_uscc = random_uscc()
    stolen = await client.post(
        "/api/v1/applications",
        json={
            "item_code": ITEM,
            "applicant_name": phone.name,
            "form": FORM,
            "sign_commitment": True,
            "commitment_signing_session": mine,
        },
        headers=tokens.enterprise(stranger_uscc),
    )
    assert stolen.status_code == 404 and problem(stolen)["code"] == "signing_session_not_found"
    # Nothing was written by any refusal: the signed letter still decides the real application.
    assert (await submit(client, phone, mine)).json()["state"] == "approved"
