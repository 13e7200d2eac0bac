"""Sealed documents issued on real transitions, read back from the PDF, verified and tampered with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pysmx.SM2 import Verify as independent_sm2_verify
from pysmx.SM3 import digest as independent_sm3
from sqlalchemy import select

from approval.config import Settings
from approval.context import context_of
from approval.db import outbox_events
from approval.documents.render import extract_text, read_sealed, render_pdf
from approval.main import create_app
from approval.signing.config import dev_ca_directory
from govshared.auth import Role
from govshared.chinatime import CHINA
from govshared.seal import (
    DEFAULT_SIGNER_ID,
    DevelopmentSeals,
    Sm2Signer,
    canonical_json,
    generate_sm2_key,
    load_sm2_private_key,
    sm3_digest,
    to_be_signed,
)
from govshared.signing.phone import sign_commitment
from govshared.testing import Tokens, problem, random_uscc


def flat(text: str) -> str:
    """PDF text without the line breaks and spaces that wrapping puts in."""
    return "".join(text.split())


def today_text() -> str:
    today = datetime.now(CHINA).date()
    return f"{today.year}年{today.month}月{today.day}日"


def check_common(pdf: bytes, document: dict[str, Any], uscc: str, app_no: str) -> str:
    """The text every document prints, and an independent check of its SM2 seal; the flat text."""
    text = flat(extract_text(pdf))
    for expected in (
        document["title"],
        document["number"],
        "上海无线示范有限公司",
        uscc,
        "无线电台（站）设置审批",
        app_no,
        "上海市经济和信息化委员会",  # the deciding authority from the guide
        today_text(),
        "中华人民共和国行政许可法",
        "扫码核验真伪",
    ):
        assert flat(expected) in text, (expected, text)
    sealed = read_sealed(pdf)
    assert sealed is not None
    content, signature = sealed
    assert content == document["content"]
    # A second SM3 and SM2 implementation (snowland-smx) agrees with what gmssl signed.
    assert bytes(independent_sm3(canonical_json(content))).hex() == signature.digest
    assert signature.digest == document["content_digest"]
    tbs = to_be_signed(
        digest_hex=signature.digest, seal_id=signature.seal.seal_id, signed_at=signature.signed_at
    )
    assert independent_sm2_verify(
        signature.signature, tbs, signature.seal.public_key, 64, uid=DEFAULT_SIGNER_ID
    )
    assert hashlib.sha256(pdf).hexdigest() == document["pdf_sha256"]
    return text


async def verify_upload(client: httpx.AsyncClient, pdf: bytes) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/documents/verify", files={"file": ("doc.pdf", pdf, "application/pdf")}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_acceptance_and_approval_in_a_real_flow(
    approved: Any, client: httpx.AsyncClient
) -> None:
    flow = approved
    documents = await flow.documents()
    assert [d["kind"] for d in documents] == ["acceptance", "approval"]
    app_no = documents[0]["content"]["application_no"]
    acceptance, approval = documents

    text = check_common(await flow.pdf(acceptance), acceptance, flow.uscc, app_no)
    assert "受理通知书" in text and "决定予以受理" in text and "第三十二条第一款第（五）项" in text

    pdf = await flow.pdf(approval)
    text = check_common(pdf, approval, flow.uscc, app_no)
    assert "准予行政许可决定书" in text and "决定准予行政许可" in text
    assert (
        "《中华人民共和国无线电管理条例》第二十七条、第三十条" in text
    )  # legal basis, from the guide
    assert "同意设置" in text and "无线电台执照" in text

    verified = await verify_upload(client, pdf)
    assert verified["genuine"] is True and verified["unaltered"] is True
    assert verified["still_valid"] is True and verified["verdict"] == "真实有效"
    # The deciding authority's own development seal, never another authority's.
    assert approval["content"]["authority"] == "上海市经济和信息化委员会"
    assert verified["authority"] == "上海市经济和信息化委员会（开发用章）"
    assert verified["number"] == approval["number"]

    by_number = await client.get(
        "/api/v1/documents/verify",
        params={"number": approval["number"], "sha256": approval["pdf_sha256"]},
    )
    assert by_number.status_code == 200 and by_number.json()["genuine"] is True
    by_qr = await client.get(
        "/api/v1/documents/verify",
        params={"number": approval["number"], "digest": approval["content_digest"]},
    )
    assert by_qr.json()["genuine"] is True


async def test_the_transition_names_its_document_in_the_trail_and_event(
    approved: Any, client: httpx.AsyncClient, app: FastAPI
) -> None:
    flow = approved
    acceptance, approval = await flow.documents()
    trail = (
        await client.get(
            f"/api/v1/applications/{flow.application_id}/events", headers=flow.applicant
        )
    ).json()
    named = {e["action"]: e["details"].get("document") for e in trail}
    assert named["accept"]["number"] == acceptance["number"]
    assert named["approve"] == {
        "id": approval["id"],
        "kind": "approval",
        "number": approval["number"],
        "title": "准予行政许可决定书",
        "content_sm3": approval["content_digest"],
    }
    assert named["submit"] is None and named["review"] is None
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.execute(
                select(outbox_events.c.payload).where(
                    outbox_events.c.payload.contains(flow.application_id)
                )
            )
        ).scalars()
        events = [json.loads(p) for p in payloads]
    transitions = [e for e in events if e["type"].startswith("cn.gov.approval.application.")]
    numbers = {(e["data"]["details"].get("document") or {}).get("number") for e in transitions}
    assert {acceptance["number"], approval["number"]} <= numbers
    # Once sealed, each document has its own event for notify, with where to fetch the file.
    issued = {
        e["data"]["document"]["number"]: e["data"]["document"]
        for e in events
        if e["type"] == "cn.gov.approval.document.issued.v1"
    }
    assert set(issued) == {acceptance["number"], approval["number"]}
    ref = issued[approval["number"]]
    assert ref["pdf_sha256"] == approval["pdf_sha256"] and ref["pdf_size"] == approval["pdf_size"]
    assert ref["download_path"] == (
        f"/api/v1/applications/{flow.application_id}/documents/{approval['id']}/pdf"
    )
    assert ref["title"] == "准予行政许可决定书" and ref["verify_url"].endswith("/verify")


async def test_commitment_route_decision_is_issued_at_intake_and_sealed_by_the_sealer(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI
) -> None:
    uscc = random_uscc()
    guide = (await client.get("/api/v1/items/JXW-CN-011")).json()["guide"]
    session_id = await sign_commitment(
        client,
        headers=tokens.enterprise(uscc),
        uscc=uscc,
        item_code="JXW-CN-011",
        applicant_name="上海临港示范有限公司",
        ca_directory=dev_ca_directory(app.state.settings.data_dir),
    )
    submitted = await client.post(
        "/api/v1/applications",
        json={
            "item_code": "JXW-CN-011",
            "applicant_name": "上海临港示范有限公司",
            "form": {"project_name": "临港数据中心项目", "annual_energy_tce": 8000},
            "sign_commitment": True,
            "commitment_signing_session": session_id,
            "commitment_text_sha256": hashlib.sha256(guide["commitment_text"].encode()).hexdigest(),
        },
        headers=tokens.enterprise(uscc),
    )
    assert submitted.status_code == 201 and submitted.json()["state"] == "approved"
    app_id = submitted.json()["id"]
    listed = await client.get(
        f"/api/v1/applications/{app_id}/documents", headers=tokens.enterprise(uscc)
    )
    # The decision, and the applicant's own signed commitment letter (tests/signing).
    [decision] = [d for d in listed.json()["items"] if d["kind"] == "approval"]
    assert (
        decision["kind"] == "approval"
        and "上海临港示范有限公司" in decision["content"]["applicant_name"]
    )
    # Decided and numbered in the submission's transaction; the worker's sealer has not run yet.
    assert decision["status"] == "pending" and decision["pdf_sha256"] is None
    download = f"/api/v1/applications/{app_id}/documents/{decision['id']}/pdf"
    early = await client.get(download, headers=tokens.enterprise(uscc))
    assert early.status_code == 409 and problem(early)["code"] == "document_not_sealed_yet"
    checked = await client.get("/api/v1/documents/verify", params={"number": decision["number"]})
    assert checked.json()["genuine"] is False and checked.json()["failure"] == "not_sealed_yet"

    assert (await context_of(app).sealer.run_once()).sealed >= 1
    [decision] = [
        d
        for d in (
            await client.get(
                f"/api/v1/applications/{app_id}/documents", headers=tokens.enterprise(uscc)
            )
        ).json()["items"]
        if d["kind"] == "approval"
    ]
    assert decision["status"] == "valid" and decision["sealed_at"] is not None
    pdf = await client.get(
        f"/api/v1/applications/{app_id}/documents/{decision['id']}/pdf",
        headers=tokens.enterprise(uscc),
    )
    text = flat(extract_text(pdf.content))
    assert "准予行政许可决定书" in text and "《固定资产投资项目节能审查办法》第十条" in text


async def test_rejection_notice(flow: Any) -> None:
    await flow.submit()
    await flow.step(
        "reject",
        Role.ACCEPTOR,
        reject_reason="outside_jurisdiction",
        reason="申请事项不属于本机关职权范围",
    )
    [document] = await flow.documents()
    assert document["kind"] == "rejection"
    text = check_common(
        await flow.pdf(document), document, flow.uscc, document["content"]["application_no"]
    )
    assert "不予受理通知书" in text and "申请事项不属于本机关职权范围" in text
    assert "决定不予受理" in text and "行政复议" in text


async def test_supplement_notice_lists_every_missing_material(flow: Any) -> None:
    await flow.submit()
    await flow.step(
        "supplement-request",
        Role.ACCEPTOR,
        missing_items=["设备型号核准证明", "无线电频率使用许可证"],
        reason="复印件不清晰",
    )
    [document] = await flow.documents()
    assert document["kind"] == "supplement"
    text = check_common(
        await flow.pdf(document), document, flow.uscc, document["content"]["application_no"]
    )
    assert "补正告知书" in text and "一次性补正" in text
    assert (
        "1.无线电频率使用许可证" in text and "2.设备型号核准证明" in text and "复印件不清晰" in text
    )


async def test_denial_decision(flow: Any) -> None:
    await flow.submit()
    await flow.step("accept", Role.ACCEPTOR)
    await flow.step("review", Role.REVIEWER, opinion="不符合条件")
    await flow.step("deny", Role.APPROVER, reason="拟使用频率已被其他台站占用")
    documents = await flow.documents()
    assert [d["kind"] for d in documents] == ["acceptance", "denial"]
    denial = documents[1]
    text = check_common(
        await flow.pdf(denial), denial, flow.uscc, denial["content"]["application_no"]
    )
    assert "不予行政许可决定书" in text and "拟使用频率已被其他台站占用" in text
    assert "决定不予行政许可" in text and "第三十八条第二款" in text and "行政诉讼" in text


async def test_only_the_parties_may_download(
    approved: Any, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    flow = approved
    [acceptance, _] = await flow.documents()
    # Staff of the jurisdiction (310000 covers the item's 310000) may; others get 404.
    assert len(await flow.documents(tokens.staff(Role.ACCEPTOR, "310000"))) == 2
    base = f"/api/v1/applications/{flow.application_id}/documents"
    for headers in (tokens.enterprise(random_uscc()), tokens.staff(Role.ACCEPTOR, "320000")):
        listed = await client.get(base, headers=headers)
        assert listed.status_code == 404 and problem(listed)["code"] == "application_not_found"
        assert (
            await client.get(f"{base}/{acceptance['id']}/pdf", headers=headers)
        ).status_code == 404
    assert (await client.get(base)).status_code == 401
    # A service reads a document only to deliver it: notify (which attaches it to the
    # applicant's email) may; any other service's token is refused (the applicant's name, USCC
    # and decision are not theirs to read).
    pdf = f"{base}/{acceptance['id']}/pdf"
    assert (await client.get(pdf, headers=tokens.service("notify"))).status_code == 200
    for service in ("license", "tests"):
        refused = await client.get(pdf, headers=tokens.service(service))
        assert refused.status_code == 403 and problem(refused)["code"] == "forbidden", service
    missing = await client.get(
        f"{base}/00000000-0000-0000-0000-000000000000/pdf", headers=flow.applicant
    )
    assert missing.status_code == 404 and problem(missing)["code"] == "document_not_found"


async def test_one_changed_byte_in_the_signed_content_fails(
    approved: Any, client: httpx.AsyncClient
) -> None:
    flow = approved
    approval = (await flow.documents())[1]
    pdf = await flow.pdf(approval)
    needle = f'"applicant_uscc":"{flow.uscc}"'.encode()
    assert pdf.count(needle) == 1
    at = pdf.index(needle) + len(needle) - 2
    tampered = pdf[:at] + (b"0" if pdf[at : at + 1] != b"0" else b"1") + pdf[at + 1 :]
    verified = await verify_upload(client, tampered)
    assert verified["genuine"] is False and verified["failure"] == "digest_mismatch"
    assert "篡改" in verified["reason"]

    # A byte changed outside the signed content: the seal holds, but it is not the file issued.
    producer = pdf.index(b"/Producer (") + len(b"/Producer (")
    retouched = pdf[:producer] + b"X" + pdf[producer + 1 :]
    verified = await verify_upload(client, retouched)
    assert verified["failure"] == "file_altered" and verified["unaltered"] is False

    by_number = await client.get(
        "/api/v1/documents/verify",
        params={"number": approval["number"], "sha256": hashlib.sha256(tampered).hexdigest()},
    )
    assert by_number.json()["failure"] == "file_altered"


async def test_a_document_signed_by_an_unknown_key_fails(
    approved: Any, client: httpx.AsyncClient, app: FastAPI
) -> None:
    flow = approved
    approval = (await flow.documents())[1]
    seals = context_of(app).sealing.seals
    identity = await seals.signer_for(approval["content"]["authority"]).identity()
    forger_key, _ = generate_sm2_key()
    forger = Sm2Signer(
        private_key=forger_key,
        seal_id=identity.seal_id,  # same seal id and authority: only the key differs
        authority=identity.authority,
        valid_from=identity.valid_from,
        valid_until=identity.valid_until,
    )
    content = dict(approval["content"])
    signature = await forger.sign(sm3_digest(canonical_json(content)))
    forged = render_pdf(content=content, signature=signature, verify_url="http://x/verify", qr="x")
    verified = await verify_upload(client, forged)
    assert verified["genuine"] is False and verified["failure"] == "unknown_seal"
    assert "未知密钥" in verified["reason"]


async def test_a_document_signed_after_the_seal_expired_fails(
    approved: Any, client: httpx.AsyncClient, app: FastAPI
) -> None:
    flow = approved
    approval = (await flow.documents())[1]
    settings: Settings = app.state.settings
    private, _ = load_sm2_private_key(Path(settings.data_dir) / "keys" / "dev-seal-sm2.key")
    authority = approval["content"]["authority"]
    identity = await context_of(app).sealing.seals.signer_for(authority).identity()
    # The key holder signs after the registered validity, claiming a longer one for the seal.
    late = DevelopmentSeals(
        private,
        valid_from=identity.valid_from,
        valid_until=identity.valid_until + timedelta(days=3650),
    ).signer_for(authority)
    assert late.identity_now().public_key == identity.public_key
    content = dict(approval["content"])
    signature = late.sign_at(
        sm3_digest(canonical_json(content)), identity.valid_until + timedelta(days=1)
    )
    pdf = render_pdf(content=content, signature=signature, verify_url="http://x/verify", qr="x")
    verified = await verify_upload(client, pdf)
    assert verified["genuine"] is False and verified["failure"] == "seal_not_valid_at_signing"
    assert "有效期" in verified["reason"]


async def test_an_expired_seal_cannot_sign_so_the_transition_does_not_happen(
    settings_factory: Callable[..., Settings], flow: Any
) -> None:
    await flow.submit()  # through the session's app, on the same database
    settings = settings_factory(
        seal_valid_from=date(2020, 1, 1), seal_valid_until=date(2020, 12, 31)
    )
    expired = create_app(settings)
    async with expired.router.lifespan_context(expired):
        transport = httpx.ASGITransport(app=expired)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            base = f"/api/v1/applications/{flow.application_id}"
            refused = await client.post(
                f"{base}/accept", json={}, headers=flow.tokens.staff(Role.ACCEPTOR)
            )
            body = problem(refused)
            assert refused.status_code == 409 and body["code"] == "seal_not_valid"
            assert "有效期" in body["detail"] and body["title_en"]
            state = await client.get(base, headers=flow.applicant)
            assert state.json()["state"] == "submitted"
            listed = await client.get(f"{base}/documents", headers=flow.applicant)
            assert listed.json()["items"] == []


async def test_verification_of_things_that_are_not_our_documents(client: httpx.AsyncClient) -> None:
    plain = render_plain_pdf()
    verified = await verify_upload(client, plain)
    assert verified["genuine"] is False and verified["failure"] == "not_sealed"
    wrong_type = await client.post(
        "/api/v1/documents/verify", files={"file": ("a.png", b"\x89PNG\r\n\x1a\nxxxx", "image/png")}
    )
    assert wrong_type.status_code == 415 and problem(wrong_type)["code"] == "unsupported_media_type"
    unknown = await client.get(
        "/api/v1/documents/verify", params={"number": "310000〔2026〕准许字第0000号"}
    )
    assert unknown.status_code == 200 and unknown.json()["failure"] == "not_registered"


def render_plain_pdf() -> bytes:
    """A PDF that carries no seal."""
    import io

    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "not sealed")
    page.save()
    return buffer.getvalue()


def test_signing_time_is_recorded_in_utc() -> None:
    # The signed statement is the same whichever time zone the signing time was written in.
    at = datetime(2026, 11, 29, 9, 0, tzinfo=CHINA)
    assert to_be_signed(digest_hex="00", seal_id="s", signed_at=at) == to_be_signed(
        digest_hex="00", seal_id="s", signed_at=at.astimezone(UTC)
    )
