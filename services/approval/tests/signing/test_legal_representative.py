"""An item whose guide requires the legal representative's signature: signed on the phone first."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from govshared.auth import Role
from govshared.signing import SealKind
from govshared.signing.devca import DevCA
from govshared.signing.phone import answer
from govshared.testing import Tokens, problem

from .test_withdrawal_receipt import trail

ITEM = "JXW-XK-007"  # 民用爆炸物品销售许可: the demo item whose guide asks for the 法定代表人章


def application(phone: Any, **changes: Any) -> dict[str, Any]:
    return {"item_code": ITEM, "applicant_name": phone.name, "business_type": "new", **changes}


async def test_the_guide_says_so_and_an_unsigned_application_is_refused(
    client: httpx.AsyncClient, phone: Any
) -> None:
    guide = (await client.get(f"/api/v1/items/{ITEM}")).json()["guide"]
    assert guide["required_signature"] == "legal_representative"
    refused = await client.post(
        "/api/v1/applications", json=application(phone), headers=phone.headers
    )
    assert refused.status_code == 422
    assert problem(refused)["code"] == "legal_representative_signature_required"
    # An item that asks for no signature has no application to sign.
    other = await client.post(
        "/api/v1/signing-sessions",
        json={"purpose": "application", "item_code": "JXW-XK-003", "applicant_name": phone.name},
        headers=phone.headers,
    )
    assert other.status_code == 422 and problem(other)["code"] == "signing_purpose_not_allowed"


async def test_signed_by_the_legal_representative_the_application_enters_the_workflow(
    client: httpx.AsyncClient, phone: Any, ca: DevCA
) -> None:
    opened = await client.post(
        "/api/v1/signing-sessions",
        json={"purpose": "application", **application(phone), "form": {}},
        headers=phone.headers,
    )
    assert opened.status_code == 201, opened.text
    session = opened.json()
    assert '"required_seal":"法定代表人章"' in session["content"]
    url = f"/api/v1/signing-sessions/{session['id']}/signature"
    # The company's 公章 is not the legal representative's seal.
    official = await client.post(url, json=phone.answer(session), headers=phone.headers)
    assert official.status_code == 422 and problem(official)["code"] == "seal_kind_not_accepted"
    legal = ca.issue_seal(uscc=phone.uscc, name=phone.name, kind=SealKind.LEGAL_REPRESENTATIVE)
    signed = await client.post(
        url,
        json=answer(session, private_key=legal.private_key, certificate_pem=legal.certificate_pem),
        headers=phone.headers,
    )
    assert signed.status_code == 200, signed.text

    # The signed application is not another one: a different name is refused (and the session
    # stays usable, since nothing was written).
    other = await client.post(
        "/api/v1/applications",
        json=application(
            phone, applicant_name="别的示范有限公司", application_signing_session=session["id"]
        ),
        headers=phone.headers,
    )
    assert other.status_code == 422 and problem(other)["code"] == "signature_required"
    submitted = await client.post(
        "/api/v1/applications",
        json=application(phone, application_signing_session=session["id"]),
        headers=phone.headers,
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["state"] == "submitted"
    [entry] = await trail(client, phone, submitted.json()["id"])
    evidence = entry["details"]["application_signature"]
    assert evidence["signing_session"] == session["id"]
    assert evidence["seal_kind"] == "法定代表人章"
    assert evidence["certificate_serial"] == f"{legal.serial:x}"
    # One signature, one application.
    again = await client.post(
        "/api/v1/applications",
        json=application(phone, application_signing_session=session["id"]),
        headers=phone.headers,
    )
    assert again.status_code == 409 and problem(again)["code"] == "signing_session_replayed"


async def test_a_signed_submission_retried_after_a_new_guide_version_gets_its_answer(
    client: httpx.AsyncClient, phone: Any, ca: DevCA, tokens: Tokens
) -> None:
    """The signed application names the item's version; the retry of the submission that used
    it, after a new version of the guide, is answered as it was (not refused as a signature of
    another version, which would have the client submit again under a new key)."""
    admin = tokens.header(Role.ADMIN)
    base = (await client.get(f"/api/v1/items/{ITEM}")).json()
    code = f"JXW-T-{uuid.uuid4().hex[:6].upper()}"
    kept = (
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
    draft = {k: base[k] for k in kept}
    assert (
        await client.post("/api/v1/items", json={**draft, "code": code}, headers=admin)
    ).is_success
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).is_success
    opened = await client.post(
        "/api/v1/signing-sessions",
        json={"purpose": "application", **application(phone, item_code=code), "form": {}},
        headers=phone.headers,
    )
    assert opened.status_code == 201, opened.text
    legal = ca.issue_seal(uscc=phone.uscc, name=phone.name, kind=SealKind.LEGAL_REPRESENTATIVE)
    signed = await client.post(
        f"/api/v1/signing-sessions/{opened.json()['id']}/signature",
        json=answer(
            opened.json(), private_key=legal.private_key, certificate_pem=legal.certificate_pem
        ),
        headers=phone.headers,
    )
    assert signed.status_code == 200, signed.text
    body = application(phone, item_code=code, application_signing_session=opened.json()["id"])
    headers = {**phone.headers, "Idempotency-Key": f"signed-{code}"}
    first = await client.post("/api/v1/applications", json=body, headers=headers)
    assert first.status_code == 201, first.text

    revised = {**draft, "guide": {**draft["guide"], "fees": "按规定收费"}, "change_note": "收费"}
    assert (await client.put(f"/api/v1/items/{code}/draft", json=revised, headers=admin)).is_success
    assert (await client.post(f"/api/v1/items/{code}/publish", headers=admin)).is_success
    assert (await client.get(f"/api/v1/items/{code}")).json()["version"] == 2
    again = await client.post("/api/v1/applications", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    listed = await client.get("/api/v1/applications", headers=phone.headers)
    assert [a["id"] for a in listed.json()["items"]] == [first.json()["id"]]
