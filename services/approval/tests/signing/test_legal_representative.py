"""An item whose guide requires the legal representative's signature: signed on the phone first."""

from __future__ import annotations

from typing import Any

import httpx

from govshared.signing import SealKind
from govshared.signing.devca import DevCA
from govshared.signing.phone import answer
from govshared.testing import problem

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
