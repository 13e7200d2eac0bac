"""The signed 告知承诺书 and 送达回证 as PDFs: stored with the case, verified by anyone, tampering fails.

The checks that matter are made again with independent code: snowland-smx (pysmx) computes the SM3 of
the embedded content and verifies the applicant's SM2 signature, and ``cryptography``'s X.509 parser
reads the embedded certificate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from pysmx.SM2 import Verify as independent_sm2_verify
from pysmx.SM3 import digest as independent_sm3

from approval.context import context_of
from approval.documents.render import extract_text, render_signed_pdf
from approval.documents.signed import check_signed, payload_bytes, read_signed
from govshared.seal import DEFAULT_SIGNER_ID, canonical_json, sm3_hex
from govshared.signing import CrlSource, SignatureVerifier
from govshared.signing.devca import DevCA
from govshared.signing.phone import answer, sign_digest

from .test_withdrawal_receipt import FORM, ITEM, sign_session, trail


async def commitment_decided(client: httpx.AsyncClient, phone: Any, app: FastAPI) -> str:
    """An application decided at once on a commitment signed on the phone; its id."""
    opened = await client.post(
        "/api/v1/signing-sessions",
        json={"item_code": ITEM, "applicant_name": phone.name},
        headers=phone.headers,
    )
    assert (await phone.sign(client, opened.json())).status_code == 200
    decided = await client.post(
        "/api/v1/applications",
        json={
            "item_code": ITEM,
            "applicant_name": phone.name,
            "form": FORM,
            "commitment_signing_session": opened.json()["id"],
        },
        headers=phone.headers,
    )
    assert decided.status_code == 201 and decided.json()["state"] == "approved", decided.text
    assert (await context_of(app).sealer.run_once()).sealed >= 2  # the decision and the letter
    return str(decided.json()["id"])


async def documents_of(client: httpx.AsyncClient, phone: Any, application_id: str) -> Any:
    response = await client.get(
        f"/api/v1/applications/{application_id}/documents", headers=phone.headers
    )
    assert response.status_code == 200, response.text
    return {d["kind"]: d for d in response.json()["items"]}


async def pdf_of(client: httpx.AsyncClient, phone: Any, document: dict[str, Any]) -> bytes:
    response = await client.get(
        f"/api/v1/applications/{document['application_id']}/documents/{document['id']}/pdf",
        headers=phone.headers,
    )
    assert response.status_code == 200, response.text
    return response.content


async def verify(client: httpx.AsyncClient, pdf: bytes) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/documents/verify", files={"file": ("signed.pdf", pdf, "application/pdf")}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def check_independently(pdf: bytes, phone: Any) -> dict[str, Any]:
    """The embedded signature holds under pysmx and the certificate under ``cryptography``."""
    payload = read_signed(pdf)
    assert payload is not None
    record = payload.record
    assert bytes(independent_sm3(payload.content.encode())).hex() == record["digest"]
    assert independent_sm2_verify(
        record["signature"],
        bytes.fromhex(record["digest"]),
        phone.seal.public_key,
        64,
        uid=DEFAULT_SIGNER_ID,
    )
    cert = x509.load_pem_x509_certificate(record["certificate"].encode())
    assert cert.serial_number == phone.seal.serial
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == phone.uscc
    return dict(json.loads(payload.content))


async def test_the_signed_commitment_letter_is_a_pdf_anyone_can_verify(
    client: httpx.AsyncClient, phone: Any, app: FastAPI
) -> None:
    application_id = await commitment_decided(client, phone, app)
    documents = await documents_of(client, phone, application_id)
    letter = documents["commitment"]
    assert letter["title"] == "告知承诺书" and letter["status"] == "valid"
    assert letter["seal_id"] == f"{phone.seal.serial:x}"  # the applicant's certificate
    pdf = await pdf_of(client, phone, letter)
    content = check_independently(pdf, phone)
    assert content["purpose"] == "commitment" and content["applicant_uscc"] == phone.uscc
    text = "".join(extract_text(pdf).split())
    for expected in ("告知承诺书", letter["number"], phone.name, phone.uscc, "承诺人（电子签名）"):
        assert expected in text, expected
    first_line = next(line for line in content["text"].splitlines() if line.strip())
    assert "".join(first_line.split())[:12] in text

    verified = await verify(client, pdf)
    assert verified["genuine"] is True and verified["unaltered"] is True, verified
    assert verified["signature_type"] == "applicant_signature"
    assert verified["signer"] == f"{phone.name}（统一社会信用代码 {phone.uscc}）"
    assert verified["signer_uscc"] == phone.uscc and verified["signer_kind"] == "enterprise"
    assert verified["seal_kind"] == "公章"
    assert verified["certificate_valid_at_signing"] is True
    assert verified["revocation_at_signing"].startswith("签署时未被吊销")
    assert verified["certificate_issuer"] and verified["number"] == letter["number"]
    by_number = await client.get(
        "/api/v1/documents/verify",
        params={"number": letter["number"], "sha256": letter["pdf_sha256"]},
    )
    assert by_number.json()["genuine"] is True
    assert by_number.json()["signer"] == verified["signer"]
    page = await client.post("/verify", files={"file": ("signed.pdf", pdf, "application/pdf")})
    assert 'data-genuine="true"' in page.text and phone.uscc in page.text and "签署人" in page.text
    # The commitment decision names the signed letter in the case's trail.
    decision = next(
        e
        for e in await trail(client, phone, application_id)
        if e["action"] == ("commitment_decision")
    )
    assert decision["details"]["commitment_letter"]["number"] == letter["number"]


async def test_an_altered_signed_pdf_fails(
    client: httpx.AsyncClient, phone: Any, app: FastAPI, ca: DevCA
) -> None:
    application_id = await commitment_decided(client, phone, app)
    letter = (await documents_of(client, phone, application_id))["commitment"]
    pdf = await pdf_of(client, phone, letter)
    payload = read_signed(pdf)
    assert payload is not None
    content = json.loads(payload.content)

    # One byte of the page changed: the signature still holds, the file is not the one registered.
    at = pdf.index(b"stream") + 20
    altered = pdf[:at] + bytes([pdf[at] ^ 1]) + pdf[at + 1 :]
    found = await verify(client, altered)
    assert found["genuine"] is False and found["failure"] == "file_altered"

    def forged(content: dict[str, Any], record: dict[str, Any]) -> bytes:
        return render_signed_pdf(
            kind="commitment",
            number=letter["number"],
            title=letter["title"],
            content=content,
            record=record,
            signed_on=letter["issued_on"],
            verify_url="http://approval.test/verify",
            qr="x",
            payload=payload_bytes(
                number=letter["number"], title=letter["title"], content=content, record=record
            ),
        )

    # Other words under the same signature.
    other = {**content, "applicant_name": "另一家示范有限公司"}
    found = await verify(client, forged(other, payload.record))
    assert found["genuine"] is False and found["failure"] == "digest_mismatch"
    # A signature the certificate's key did not make.
    thief = ca.issue_seal(uscc=phone.uscc, name=phone.name)
    wrong = {
        **payload.record,
        "signature": sign_digest(thief.private_key, payload.record["digest"]),
    }
    found = await verify(client, forged(content, wrong))
    assert found["genuine"] is False and found["failure"] == "bad_signature"
    # A certificate from a CA nobody trusts, signing the same content.
    rogue = DevCA(app.state.settings.data_dir / "rogue-ca").issue_seal(
        uscc=phone.uscc, name=phone.name
    )
    untrusted = {
        **payload.record,
        "certificate": rogue.certificate_pem,
        "signature": sign_digest(rogue.private_key, payload.record["digest"]),
    }
    found = await verify(client, forged(content, untrusted))
    assert found["genuine"] is False and found["failure"] == "certificate_untrusted"
    # Genuine signature, but the register never issued it under that number.
    found = await verify(client, forged(content, payload.record))
    assert found["genuine"] is False and found["failure"] == "file_altered"


async def test_the_signed_receipt_is_a_pdf_and_stays_valid_after_a_later_revocation(
    client: httpx.AsyncClient, phone: Any, app: FastAPI, ca: DevCA, crl_fresh: Any
) -> None:
    application_id = await commitment_decided(client, phone, app)
    session = await sign_session(client, phone, application_id, "receipt")
    assert (await phone.sign(client, session)).status_code == 200
    served = await client.post(
        f"/api/v1/applications/{application_id}/receipt",
        json={"signing_session": session["id"]},
        headers=phone.headers,
    )
    assert served.status_code == 200, served.text
    assert (await context_of(app).sealer.run_once()).sealed == 1
    documents = await documents_of(client, phone, application_id)
    receipt = documents["receipt"]
    assert receipt["title"] == "送达回证"
    [entry] = [
        e for e in await trail(client, phone, application_id) if e["action"] == ("receipt_signed")
    ]
    assert entry["details"]["signed_document"]["number"] == receipt["number"]
    pdf = await pdf_of(client, phone, receipt)
    content = check_independently(pdf, phone)
    assert content["document_number"] == documents["approval"]["number"]
    text = "".join(extract_text(pdf).split())
    assert "送达回证" in text and documents["approval"]["number"] in text

    # The seal is revoked after it signed: the receipt was signed with a valid certificate.
    ca.revoke(phone.seal.serial)
    crl_fresh()
    verified = await verify(client, pdf)
    assert verified["genuine"] is True, verified
    assert verified["certificate_valid_at_signing"] is True
    assert verified["title"] == "送达回证"


async def not_sealed_yet(client: httpx.AsyncClient, document: dict[str, Any]) -> None:
    """The public checks by number (API and page, no login) say the document is not issued yet."""
    assert document["status"] == "pending" and document["pdf_sha256"] is None
    checked = await client.get("/api/v1/documents/verify", params={"number": document["number"]})
    assert checked.status_code == 200, checked.text
    found = checked.json()
    assert found["genuine"] is False and found["failure"] == "not_sealed_yet", found
    assert found["number"] == document["number"] and found["title"] == document["title"]
    page = await client.get("/verify", params={"number": document["number"]})
    assert page.status_code == 200, page.text
    assert 'data-failure="not_sealed_yet"' in page.text and "尚未签发" in page.text


async def test_a_signed_document_still_pending_is_not_sealed_yet_to_the_public_check(
    client: httpx.AsyncClient, phone: Any, app: FastAPI
) -> None:
    # The commitment letter, registered with the applicant's signature at intake: not laid out yet.
    opened = await client.post(
        "/api/v1/signing-sessions",
        json={"item_code": ITEM, "applicant_name": phone.name},
        headers=phone.headers,
    )
    assert (await phone.sign(client, opened.json())).status_code == 200
    decided = await client.post(
        "/api/v1/applications",
        json={
            "item_code": ITEM,
            "applicant_name": phone.name,
            "form": FORM,
            "commitment_signing_session": opened.json()["id"],
        },
        headers=phone.headers,
    )
    assert decided.status_code == 201, decided.text
    application_id = str(decided.json()["id"])
    await not_sealed_yet(client, (await documents_of(client, phone, application_id))["commitment"])

    # The receipt of the sealed decision, signed on the phone: pending until the sealer runs.
    assert (await context_of(app).sealer.run_once()).sealed == 2
    session = await sign_session(client, phone, application_id, "receipt")
    assert (await phone.sign(client, session)).status_code == 200
    served = await client.post(
        f"/api/v1/applications/{application_id}/receipt",
        json={"signing_session": session["id"]},
        headers=phone.headers,
    )
    assert served.status_code == 200, served.text
    receipt = (await documents_of(client, phone, application_id))["receipt"]
    await not_sealed_yet(client, receipt)

    # Laid out by the sealer, the same number checks as genuine.
    assert (await context_of(app).sealer.run_once()).sealed == 1
    checked = await client.get("/api/v1/documents/verify", params={"number": receipt["number"]})
    assert checked.json()["genuine"] is True, checked.json()


def test_a_person_s_signature_names_the_person_masked(tmp_path: Any) -> None:
    ca = DevCA(tmp_path / "ca")
    person = ca.issue_person(name="张小三", id_number="110101199003070011")
    content = {"purpose": "receipt", "title": "送达回证", "applicant_uscc": None}
    text = canonical_json(content).decode()
    digest = sm3_hex(text.encode())
    record = {
        "digest": digest,
        "signature": sign_digest(person.private_key, digest),
        "certificate": person.certificate_pem,
        "signed_at": datetime.now(UTC).isoformat(),
        "revocation_at_signing": {"status": "good", "crl_issuer": "CA"},
    }
    verifier = SignatureVerifier([(ca.certificate, CrlSource(str(ca.crl_path), ca.certificate))])
    found = check_signed(verifier, number="N-1", content_text=text, record=record)
    assert found.genuine is True and found.signer == "张*三" and found.signer_kind == "person"
    assert "110101199003070011" not in found.model_dump_json()


async def test_a_person_signs_the_receipt_for_the_enterprise_and_anyone_can_verify_it(
    client: httpx.AsyncClient, phone: Any, app: FastAPI, ca: DevCA
) -> None:
    id_number = "110101199003070011"
    person = ca.issue_person(name="张小三", id_number=id_number)
    application_id = await commitment_decided(client, phone, app)
    # The commitment is the enterprise's act: a personal key cannot sign it.
    commitment = await client.post(
        "/api/v1/signing-sessions",
        json={"item_code": ITEM, "applicant_name": phone.name},
        headers=phone.headers,
    )
    refused = await client.post(
        f"/api/v1/signing-sessions/{commitment.json()['id']}/signature",
        json=answer(
            commitment.json(),
            private_key=person.private_key,
            certificate_pem=person.certificate_pem,
        ),
        headers=phone.headers,
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "certificate_subject_mismatch"

    # The 送达回证 may be signed by the person who receives for the enterprise (签收人).
    session = await sign_session(client, phone, application_id, "receipt")
    signed = await client.post(
        f"/api/v1/signing-sessions/{session['id']}/signature",
        json=answer(
            session, private_key=person.private_key, certificate_pem=person.certificate_pem
        ),
        headers=phone.headers,
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["signer"] == "张*三"
    served = await client.post(
        f"/api/v1/applications/{application_id}/receipt",
        json={"signing_session": session["id"]},
        headers=phone.headers,
    )
    assert served.status_code == 200, served.text
    [entry] = [
        e for e in await trail(client, phone, application_id) if e["action"] == "receipt_signed"
    ]
    assert entry["details"]["signer"] == "张*三"
    assert (await context_of(app).sealer.run_once()).sealed == 1
    receipt = (await documents_of(client, phone, application_id))["receipt"]
    pdf = await pdf_of(client, phone, receipt)
    record = read_signed(pdf)
    assert record is not None
    assert independent_sm2_verify(
        record.record["signature"],
        bytes.fromhex(record.record["digest"]),
        person.public_key,
        64,
        uid=DEFAULT_SIGNER_ID,
    )
    assert "签收人（电子签名）：张*三" in "".join(extract_text(pdf).split())
    verified = await verify(client, pdf)
    assert verified["genuine"] is True, verified
    assert verified["signer"] == "张*三" and verified["signer_kind"] == "person"
    assert verified["signer_uscc"] is None and verified["seal_kind"] == "个人签名"
    assert verified["certificate_valid_at_signing"] is True
    assert id_number not in json.dumps(verified, ensure_ascii=False)
    assert id_number.encode() not in pdf

    # The same personal signature laid over a commitment letter's content does not verify.
    letter = (await documents_of(client, phone, application_id))["commitment"]
    payload = read_signed(await pdf_of(client, phone, letter))
    assert payload is not None
    text = payload.content
    person_record = {
        **payload.record,
        "certificate": person.certificate_pem,
        "signature": sign_digest(person.private_key, payload.record["digest"]),
    }
    verifier = context_of(app).verifier()
    found = check_signed(verifier, number=letter["number"], content_text=text, record=person_record)
    assert found.genuine is False and found.failure == "certificate_subject_mismatch"


async def test_a_certificate_expired_at_signing_is_named_so_by_the_public_check(
    client: httpx.AsyncClient, phone: Any, app: FastAPI, ca: DevCA
) -> None:
    application_id = await commitment_decided(client, phone, app)
    letter = (await documents_of(client, phone, application_id))["commitment"]
    payload = read_signed(await pdf_of(client, phone, letter))
    assert payload is not None
    content = json.loads(payload.content)
    stale = ca.issue_seal(
        uscc=phone.uscc,
        name=phone.name,
        days=30,
        not_before=datetime.now(UTC) - timedelta(days=60),
    )
    record = {
        **payload.record,
        "certificate": stale.certificate_pem,
        "signature": sign_digest(stale.private_key, payload.record["digest"]),
    }
    pdf = render_signed_pdf(
        kind="commitment",
        number=letter["number"],
        title=letter["title"],
        content=content,
        record=record,
        signed_on=letter["issued_on"],
        verify_url="http://approval.test/verify",
        qr="x",
        payload=payload_bytes(
            number=letter["number"], title=letter["title"], content=content, record=record
        ),
    )
    found = await verify(client, pdf)
    assert found["genuine"] is False and found["failure"] == "certificate_expired"
    assert found["certificate_valid_at_signing"] is False
    assert found["signer"] == f"{phone.name}（统一社会信用代码 {phone.uscc}）"
