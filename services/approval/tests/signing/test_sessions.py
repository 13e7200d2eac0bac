"""Signing sessions through the REST API, on both databases: two round trips from a phone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pysmx.SM2 import Verify as independent_sm2_verify
from pysmx.SM3 import digest as independent_sm3

from govshared.seal import DEFAULT_SIGNER_ID, generate_sm2_key, sm2_sign
from govshared.signing import parse_certificate
from govshared.signing.devca import DevCA
from govshared.testing import Tokens, problem, random_uscc

ITEM = "JXW-CN-011"  # 实行告知承诺 in the license stand-in


async def open_commitment(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "上海临港示范有限公司"
) -> httpx.Response:
    return await client.post(
        "/api/v1/signing-sessions",
        json={"item_code": ITEM, "applicant_name": name},
        headers=headers,
    )


async def test_a_phone_signs_a_commitment_in_two_round_trips(
    client: httpx.AsyncClient, phone: Any, tokens: Tokens
) -> None:
    opened = await open_commitment(client, phone.headers)
    assert opened.status_code == 201, opened.text
    session = opened.json()
    content = json.loads(session["content"])
    guide = (await client.get(f"/api/v1/items/{ITEM}")).json()["guide"]
    # The letter is license's published text, bound to the applicant; the digest is its SM3.
    assert content["text"] == guide["commitment_text"]
    assert content["applicant_uscc"] == phone.uscc and content["purpose"] == "commitment"
    assert bytes(independent_sm3(session["content"].encode())).hex() == session["digest"]
    assert session["status"] == "open" and session["digest_algorithm"] == "SM3"

    # Asking again while it is open (a dropped connection) gives the same session.
    again = await open_commitment(client, phone.headers)
    assert again.status_code == 200 and again.json()["id"] == session["id"]

    body = phone.answer(session)
    assert independent_sm2_verify(
        body["signature"],
        bytes.fromhex(session["digest"]),
        phone.seal.public_key,
        64,
        uid=DEFAULT_SIGNER_ID,
    )
    signed = await client.post(
        f"/api/v1/signing-sessions/{session['id']}/signature", json=body, headers=phone.headers
    )
    assert signed.status_code == 200, signed.text
    result = signed.json()
    assert result["status"] == "signed"
    assert result["signer"] == f"上海临港示范有限公司（统一社会信用代码 {phone.uscc}）"
    # The same signature again (the answer was lost): the same answer, nothing changes.
    repeat = await client.post(
        f"/api/v1/signing-sessions/{session['id']}/signature", json=body, headers=phone.headers
    )
    assert repeat.status_code == 200 and repeat.json()["signed_at"] == result["signed_at"]
    # A signature its certificate's key did not make, on a signed session, is a replay.
    other = phone.answer(session, signature="1" * 128)
    replay = await client.post(
        f"/api/v1/signing-sessions/{session['id']}/signature", json=other, headers=phone.headers
    )
    assert problem(replay)["code"] == "signing_session_replayed" and replay.status_code == 409
    fetched = await client.get(f"/api/v1/signing-sessions/{session['id']}", headers=phone.headers)
    assert fetched.json()["status"] == "signed"
    # Another enterprise does not see it.
    stranger = await client.get(
        f"/api/v1/signing-sessions/{session['id']}", headers=tokens.enterprise(random_uscc())
    )
    assert stranger.status_code == 404


async def test_bad_signatures_get_clear_codes(
    client: httpx.AsyncClient, phone: Any, ca: DevCA, tokens: Tokens, crl_fresh: Any
) -> None:
    session = (await open_commitment(client, phone.headers)).json()
    url = f"/api/v1/signing-sessions/{session['id']}/signature"

    async def post(body: dict[str, str]) -> dict[str, object]:
        response = await client.post(url, json=body, headers=phone.headers)
        assert 400 <= response.status_code < 500, response.text
        return {"status": response.status_code, **problem(response)}

    private, public = generate_sm2_key()
    wrong_key = phone.answer(
        session, signature=sm2_sign(private, public, bytes.fromhex(session["digest"]))
    )
    assert (await post(wrong_key))["code"] == "signature_invalid"

    other_digest = "00" * 32
    other_content = phone.answer(
        session,
        digest=other_digest,
        signature=sm2_sign(phone.seal.private_key, "", bytes.fromhex(other_digest)),
    )
    assert (await post(other_content))["code"] == "signature_content_mismatch"

    another = ca.issue_seal(uscc=random_uscc(), name="另一家企业有限公司")
    foreign = phone.answer(session, certificate=another.certificate_pem)
    foreign["signature"] = sm2_sign(another.private_key, "", bytes.fromhex(session["digest"]))
    mismatch = await post(foreign)
    assert mismatch["code"] == "certificate_subject_mismatch" and mismatch["status"] == 403

    expired = ca.issue_seal(
        uscc=phone.uscc, name=phone.name, days=30, not_before=datetime.now(UTC) - timedelta(days=60)
    )
    old = phone.answer(session, certificate=expired.certificate_pem)
    old["signature"] = sm2_sign(expired.private_key, "", bytes.fromhex(session["digest"]))
    assert (await post(old))["code"] == "certificate_expired"

    revoked = ca.issue_seal(uscc=phone.uscc, name=phone.name)
    ca.revoke(revoked.serial)
    crl_fresh()
    gone = phone.answer(session, certificate=revoked.certificate_pem)
    gone["signature"] = sm2_sign(revoked.private_key, "", bytes.fromhex(session["digest"]))
    assert (await post(gone))["code"] == "certificate_revoked"

    assert (await post(phone.answer(session, certificate="x" * 200)))[
        "code"
    ] == "certificate_invalid"
    # None of that signed the session: the right seal still can.
    good = await phone.sign(client, session)
    assert good.status_code == 200, good.text
    assert parse_certificate(phone.seal.certificate_pem).serial == int(
        good.json()["certificate_serial"], 16
    )


async def test_sessions_expire(
    client: httpx.AsyncClient, phone: Any, signing_clock: list[datetime]
) -> None:
    session = (await open_commitment(client, phone.headers)).json()
    signing_clock.append(datetime.now(UTC) + timedelta(minutes=11))
    late = await phone.sign(client, session)
    assert late.status_code == 410 and problem(late)["code"] == "signing_session_expired"
    # A new session is opened in its place (the expired one is not handed out again).
    fresh = await open_commitment(client, phone.headers)
    assert fresh.status_code == 201 and fresh.json()["id"] != session["id"]
    assert (await phone.sign(client, fresh.json())).status_code == 200


async def test_a_signature_of_one_session_does_not_sign_another(
    client: httpx.AsyncClient, phone: Any
) -> None:
    first = (await open_commitment(client, phone.headers)).json()
    body = phone.answer(first)
    assert (await phone.sign(client, first)).status_code == 200
    second = (await open_commitment(client, phone.headers)).json()
    assert second["id"] != first["id"]  # the first is no longer open
    replayed = await client.post(
        f"/api/v1/signing-sessions/{second['id']}/signature", json=body, headers=phone.headers
    )
    assert problem(replayed)["code"] == "signature_content_mismatch"


async def test_no_session_for_an_item_without_commitment(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post(
        "/api/v1/signing-sessions",
        json={"item_code": "JXW-XK-002", "applicant_name": "上海盐业示范有限公司"},
        headers=tokens.enterprise(random_uscc()),
    )
    assert response.status_code == 422
    assert problem(response)["code"] == "signing_purpose_not_allowed"


async def test_a_phone_that_lost_the_answer_and_signs_again_gets_the_same_answer(
    client: httpx.AsyncClient, phone: Any, ca: DevCA
) -> None:
    session = (await open_commitment(client, phone.headers)).json()
    url = f"/api/v1/signing-sessions/{session['id']}/signature"
    signed = phone.answer(session)
    first = await client.post(url, json=signed, headers=phone.headers)
    assert first.status_code == 200, first.text  # taken, but the answer never reached the phone
    # The phone signs once more: SM2 signatures are randomised, so this is another signature,
    # by the same certificate over the same digest; it is the signer repeating itself.
    resigned = phone.answer(session)
    assert resigned["signature"] != signed["signature"]
    again = await client.post(url, json=resigned, headers=phone.headers)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # A signature the certificate's key did not make, or another seal of the same enterprise,
    # is not a repeat: the session stays as first signed.
    forged = await client.post(
        url, json=phone.answer(session, signature="1" * 128), headers=phone.headers
    )
    assert forged.status_code == 409 and problem(forged)["code"] == "signing_session_replayed"
    other_seal = ca.issue_seal(uscc=phone.uscc, name=phone.name)
    other = await client.post(
        url,
        json={
            "signature": sm2_sign(other_seal.private_key, "", bytes.fromhex(session["digest"])),
            "certificate": other_seal.certificate_pem,
            "digest": session["digest"],
        },
        headers=phone.headers,
    )
    assert other.status_code == 409 and problem(other)["code"] == "signing_session_replayed"
    fetched = await client.get(f"/api/v1/signing-sessions/{session['id']}", headers=phone.headers)
    assert fetched.json()["certificate_serial"] == f"{phone.seal.serial:x}"
