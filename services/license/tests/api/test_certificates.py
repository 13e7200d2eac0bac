"""Sealed licence certificates from real flows: read back from the PDF, verified by a second SM2
implementation, tampered with, revoked, and downloaded by exactly those who may."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pysmx.SM2 import Verify as independent_sm2_verify
from pysmx.SM3 import digest as independent_sm3
from sqlalchemy import select

from govshared.auth import Role
from govshared.events import EventType, LicenceEventData, SealedDocumentRef
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
from govshared.seal.pdf import china_date_text, extract_text
from govshared.testing import Tokens, problem, random_uscc
from govshared.uscc import uscc_check_char
from licensing import clock
from licensing.certificates.render import read_sealed, render_certificate
from licensing.config import Settings
from licensing.context import context_of
from licensing.db import outbox_events

# 暂扣 is a penalty: decided after the notice of the holder's rights (行政处罚法 Art. 44).
PENALTY = {
    "legal_basis": "《食盐专营办法》第二十九条",
    "reason": "违反食盐储存规定，责令改正",
    "penalty_decision_no": "沪盐罚〔2026〕7号",
    "hearing": "waived",  # the notice's date comes from the register (serve_penalty_notice)
}

Issue = Callable[..., Awaitable[str]]
Deliver = Callable[..., Awaitable[httpx.Response]]
ServeNotice = Callable[..., Awaitable[dict[str, date]]]
NewEvent = Callable[..., dict[str, Any]]

SALT = "食盐定点批发企业证书"
AUTHORITY = "上海市经济和信息化委员会"
SEAL_AUTHORITY = f"{AUTHORITY}（开发用章）"  # the issuing authority's own development seal


def flat(text: str) -> str:
    """PDF text without the line breaks and spaces that wrapping puts in."""
    return "".join(text.split())


async def holder_view(client: httpx.AsyncClient, tokens: Tokens, uscc: str, no: str) -> Any:
    response = await client.get(f"/api/v1/licences/{no}", headers=tokens.enterprise(uscc))
    assert response.status_code == 200, response.text
    return response.json()


async def download(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> bytes:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    return response.content


def check_certificate(pdf: bytes, licence: dict[str, Any]) -> dict[str, Any]:
    """The printed text, the embedded content and an independent check of the seal."""
    certificate = licence["certificate"]
    assert certificate["status"] == "sealed"
    assert hashlib.sha256(pdf).hexdigest() == certificate["pdf_sha256"]
    assert len(pdf) == certificate["pdf_size"]
    text = flat(extract_text(pdf))
    valid_until = licence["valid_until"]
    for expected in (
        "中华人民共和国",
        licence["licence_type_name"],
        f"（电子证照第{licence['version']}版）",
        licence["licence_no"],
        licence["holder_name"],
        licence["holder_uscc"],
        licence["issuing_authority"],
        china_date_text(licence["issued_on"]),
        f"{china_date_text(licence['valid_from'])}至{china_date_text(valid_until)}",
        *(f"{k}{v}" for k, v in licence["particulars"].items()),
        "扫码核验真伪",
        "GB/T38540",
        certificate["content_digest"],
    ):
        assert flat(expected) in text, (expected, text)
    sealed = read_sealed(pdf)
    assert sealed is not None
    content, signature = sealed
    assert content["licence_no"] == licence["licence_no"]
    assert content["version"] == licence["version"]
    assert content["holder_name"] == licence["holder_name"]
    assert content["holder_uscc"] == licence["holder_uscc"]
    assert content["issuing_authority"] == licence["issuing_authority"]
    assert content["particulars"] == licence["particulars"]
    assert (content["valid_from"], content["valid_until"]) == (
        licence["valid_from"],
        licence["valid_until"],
    )
    # A second SM3 and SM2 implementation (snowland-smx) agrees with what the seal signed.
    assert bytes(independent_sm3(canonical_json(content))).hex() == signature.digest
    assert signature.digest == certificate["content_digest"]
    tbs = to_be_signed(
        digest_hex=signature.digest, seal_id=signature.seal.seal_id, signed_at=signature.signed_at
    )
    assert independent_sm2_verify(
        signature.signature, tbs, signature.seal.public_key, 64, uid=DEFAULT_SIGNER_ID
    )
    assert signature.seal.authority == SEAL_AUTHORITY
    return content


async def licence_events(app: FastAPI, licence_no: str) -> list[tuple[str, LicenceEventData]]:
    """The licence's events for notify, oldest first: (type, data)."""
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.payload.contains(licence_no))
                .where(outbox_events.c.destination == "notify")
                .order_by(outbox_events.c.created_at)
            )
        ).scalars()
        envelopes = [json.loads(p) for p in payloads]
    return [(e["type"], LicenceEventData.model_validate(e["data"])) for e in envelopes]


async def verify_file(
    client: httpx.AsyncClient, pdf: bytes, licence_no: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/licences/verify",
        files={"file": ("licence.pdf", pdf, "application/pdf")},
        data={"licence_no": licence_no} if licence_no else {},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def check_event_ref(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    licence: dict[str, Any],
    event_type: EventType,
    pdf: bytes,
) -> SealedDocumentRef:
    """The event that announced this version names its certificate, and notify can fetch it."""
    events = [d for t, d in await licence_events(app, licence["licence_no"]) if t == event_type]
    refs = [d.document for d in events if d.document and d.document.document_id]
    [ref] = [r for r in refs if r.document_id == uuid_of(licence)]
    assert ref.kind == "licence" and ref.title == licence["licence_type_name"]
    assert ref.number == licence["licence_no"]
    assert ref.issued_on.isoformat() == licence["issued_on"]
    assert ref.pdf_sha256 == hashlib.sha256(pdf).hexdigest() and ref.pdf_size == len(pdf)
    assert ref.download_path == licence["certificate"]["download_path"]
    assert ref.verify_url == app.state.settings.verify_url
    # notify attaches the file with its service token.
    fetched = await download(client, ref.download_path, tokens.service("notify"))
    assert fetched == pdf
    return ref


def uuid_of(licence: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(licence["certificate"]["id"])


async def test_issued_certificate_is_sealed_stored_and_announced(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, deliver: Deliver, new_event: NewEvent
) -> None:
    uscc = random_uscc()
    event = new_event(
        uscc=uscc,
        details={"particulars": {"仓储地址": "上海市浦东新区申江路1号", "仓储面积": "1200平方米"}},
    )
    assert (await deliver(event)).json()["processed"] == 1
    [licence_no] = [
        i["licence_no"]
        for i in (
            await client.get(f"/api/v1/enterprises/{uscc}/licences", headers=tokens.service())
        ).json()["items"]
    ]
    # Registered with the licence, sealed by the worker: until then there is no file and no event.
    pending = await holder_view(client, tokens, uscc, licence_no)
    assert pending["certificate"]["status"] == "pending"
    assert pending["certificate"]["pdf_sha256"] is None
    not_yet = await client.get(
        f"/api/v1/licences/{licence_no}/pdf", headers=tokens.enterprise(uscc)
    )
    assert not_yet.status_code == 409
    assert problem(not_yet)["code"] == "certificate_not_sealed_yet"
    assert await licence_events(app, licence_no) == []

    assert (await context_of(app).sealer.run_once()).sealed >= 1
    licence = await holder_view(client, tokens, uscc, licence_no)
    assert licence["licence_type_name"] == SALT and licence["issuing_authority"] == AUTHORITY
    assert licence["qr_url"] == licence["certificate"]["qr_url"]
    assert f"digest={licence['certificate']['content_digest']}" in licence["qr_url"]
    pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    check_certificate(pdf, licence)
    # Stored, not rendered on request: every download is the same file.
    again = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    assert again == pdf
    ref = await check_event_ref(client, tokens, app, licence, EventType.LICENCE_ISSUED, pdf)
    assert ref.download_path == (
        f"/api/v1/licences/{licence_no}/certificates/{licence['certificate']['id']}/pdf"
    )
    [(issued_type, issued)] = await licence_events(app, licence_no)
    assert issued_type == EventType.LICENCE_ISSUED and issued.status == "valid"
    assert issued.application_id is not None

    verified = await verify_file(client, pdf, licence_no)
    assert verified["result"] == "valid" and verified["genuine"] and verified["unaltered"]
    assert verified["valid_now"] and verified["message"] == "证照真实有效"
    assert verified["issuing_authority"] == AUTHORITY
    assert verified["seal_authority"] == SEAL_AUTHORITY
    assert verified["version"] == 1 and verified["is_latest_version"]
    by_qr = (
        await client.get(
            "/api/v1/licences/verify",
            params={
                "licence_no": licence_no,
                "version": 1,
                "digest": licence["certificate"]["content_digest"],
                "sha256": licence["certificate"]["pdf_sha256"],
            },
        )
    ).json()
    assert by_qr["result"] == "valid" and by_qr["unaltered"] is True
    assert (
        by_qr["seal_id"]
        == context_of(app).sealing.seals.signer_for(AUTHORITY).identity_now().seal_id
    )


async def test_changed_and_renewed_versions_get_their_own_certificates(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    issue: Issue,
    deliver: Deliver,
    new_event: NewEvent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc, details={"particulars": {"仓储地址": "申江路1号"}})
    approver = tokens.staff(Role.APPROVER, "310000")
    v1 = await holder_view(client, tokens, uscc, licence_no)
    v1_pdf = await download(client, v1["certificate"]["download_path"], tokens.enterprise(uscc))

    # 变更 on the holder's application (Art. 49), approved in approval, through the consumer.
    renamed = new_event(
        uscc=uscc, applicant_name="上海盐业更名有限公司", details={"business_type": "change"}
    )
    assert (await deliver(renamed)).json()["processed"] == 1
    await context_of(app).sealer.run_once()
    v2 = await holder_view(client, tokens, uscc, licence_no)
    assert v2["version"] == 2
    v2_pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    check_certificate(v2_pdf, v2)
    assert "上海盐业更名有限公司" in flat(extract_text(v2_pdf))
    await check_event_ref(client, tokens, app, v2, EventType.LICENCE_CHANGED, v2_pdf)

    # 变更 of the address, on a second approved application.
    change = new_event(
        uscc=uscc,
        applicant_name="上海盐业更名有限公司",
        details={"business_type": "change", "particulars": {"仓储地址": "上海市浦东新区新址路8号"}},
    )
    assert (await deliver(change)).json()["processed"] == 1
    await context_of(app).sealer.run_once()
    v3 = await holder_view(client, tokens, uscc, licence_no)
    assert v3["version"] == 3
    v3_pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    assert "上海市浦东新区新址路8号" in flat(extract_text(v3_pdf))
    check_certificate(v3_pdf, v3)
    await check_event_ref(client, tokens, app, v3, EventType.LICENCE_CHANGED, v3_pdf)

    # 延续 applied for by the holder and granted by staff.
    valid_until = date.fromisoformat(v3["valid_until"])
    monkeypatch.setattr(clock, "today", lambda: valid_until - timedelta(days=10))
    requested = await client.post(
        f"/api/v1/licences/{licence_no}/renewal", headers=tokens.enterprise(uscc)
    )
    assert requested.status_code == 200, requested.text
    granted = await client.post(
        f"/api/v1/licences/{licence_no}/renewal/decision",
        json={"grant": True, "reason": "符合延续条件"},
        headers=approver,
    )
    assert granted.status_code == 200, granted.text
    await context_of(app).sealer.run_once()
    v4 = await holder_view(client, tokens, uscc, licence_no)
    assert v4["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
    v4_pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    check_certificate(v4_pdf, v4)
    await check_event_ref(client, tokens, app, v4, EventType.LICENCE_RENEWED, v4_pdf)

    # 延续 approved in approval, through the event consumer.
    later_until = date.fromisoformat(v4["valid_until"])
    monkeypatch.setattr(clock, "today", lambda: later_until - timedelta(days=5))
    renew = new_event(
        uscc=uscc,
        applicant_name="上海盐业更名有限公司",
        details={"business_type": "renew", "licence_no": licence_no},
    )
    assert (await deliver(renew)).json()["processed"] == 1
    await context_of(app).sealer.run_once()
    v5 = await holder_view(client, tokens, uscc, licence_no)
    assert v5["version"] == 5
    v5_pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    check_certificate(v5_pdf, v5)
    await check_event_ref(client, tokens, app, v5, EventType.LICENCE_RENEWED, v5_pdf)

    # Every version keeps its own file; an old one says it was replaced.
    assert (
        len({hashlib.sha256(p).hexdigest() for p in (v1_pdf, v2_pdf, v3_pdf, v4_pdf, v5_pdf)}) == 5
    )
    assert await download(client, v1["certificate"]["download_path"], tokens.enterprise(uscc)) == (
        v1_pdf
    )
    old = await verify_file(client, v1_pdf)
    assert old["genuine"] and old["unaltered"] and old["result"] == "not_valid"
    assert old["status"] == "superseded" and old["version"] == 1 and old["latest_version"] == 5
    assert old["is_latest_version"] is False
    assert "已被第5版替代" in old["message"]
    # The renewed version runs from the day after the old one ends.
    early = await verify_file(client, v5_pdf)
    assert early["genuine"] and early["result"] == "not_valid" and "尚未生效" in early["message"]
    monkeypatch.setattr(clock, "today", lambda: date.fromisoformat(v5["valid_from"]))
    latest = await verify_file(client, v5_pdf)
    assert latest["result"] == "valid" and latest["version"] == 5


async def test_tampered_file_unknown_key_and_expired_seal_fail_with_reasons(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    licence = await holder_view(client, tokens, uscc, licence_no)
    pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    sealed = read_sealed(pdf)
    assert sealed is not None
    content, _ = sealed

    # One byte of the signed content changed (the embedded file is stored uncompressed).
    marker = f'"valid_until":"{content["valid_until"]}"'.encode()
    assert pdf.count(marker) == 1
    position = pdf.index(marker) + len(b'"valid_until":"20')
    altered = pdf[:position] + b"9" + pdf[position + 1 :]
    assert len(altered) == len(pdf) and altered != pdf
    result = await verify_file(client, altered)
    assert result["genuine"] is False and result["result"] == "forged"
    assert result["failure"] == "digest_mismatch"
    assert result["reason"] == "文件内容与签名时不一致，已被篡改"

    # One byte elsewhere in the file: the seal holds, but it is not the file that was issued.
    assert pdf.startswith(b"%PDF-1.")
    touched = pdf[:7] + (b"6" if pdf[7:8] != b"6" else b"7") + pdf[8:]
    edited = await verify_file(client, touched)
    assert edited["failure"] == "file_altered" and edited["unaltered"] is False
    assert edited["reason"] == "文件与签发存档不一致，可能已被篡改"
    by_hash = (
        await client.get(
            "/api/v1/licences/verify",
            params={"licence_no": licence_no, "sha256": hashlib.sha256(touched).hexdigest()},
        )
    ).json()
    assert by_hash["failure"] == "file_altered" and not by_hash["genuine"]
    wrong_digest = (
        await client.get(
            "/api/v1/licences/verify", params={"licence_no": licence_no, "digest": "0" * 64}
        )
    ).json()
    assert wrong_digest["failure"] == "digest_mismatch"

    settings: Settings = app.state.settings
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)

    def resealed(signer: Sm2Signer, at: datetime) -> bytes:
        forged = signer.sign_at(sm3_digest(canonical_json(content)), at)
        return render_certificate(
            content=content, signature=forged, verify_url=settings.verify_url, qr="x"
        )

    # The same content sealed with a key that is not our seal's, under our seal id.
    ours = context_of(app).sealing.seals.signer_for(content["issuing_authority"]).identity_now()
    stranger, _ = generate_sm2_key()
    unknown_key = Sm2Signer(
        private_key=stranger,
        seal_id=ours.seal_id,
        authority=ours.authority,
        valid_from=valid_from,
        valid_until=datetime(2099, 1, 1, tzinfo=UTC),
    )
    unknown = await verify_file(client, resealed(unknown_key, datetime.now(UTC)))
    assert unknown["failure"] == "unknown_seal" and not unknown["genuine"]
    assert unknown["reason"] == "签章所用印章不是本系统登记的可信印章（未知密钥）"

    # Our own key, but signing after the registered seal expired (2030-12-31).
    our_key, _ = load_sm2_private_key(settings.data_dir / "keys" / "dev-seal-sm2.key")
    backdated = DevelopmentSeals(
        our_key, valid_from=valid_from, valid_until=datetime(2099, 1, 1, tzinfo=UTC)
    ).signer_for(content["issuing_authority"])
    assert backdated.identity_now().public_key == ours.public_key
    expired = await verify_file(client, resealed(backdated, datetime(2031, 3, 1, tzinfo=UTC)))
    assert expired["failure"] == "seal_not_valid_at_signing" and not expired["genuine"]
    assert expired["reason"] == "用印时间不在印章有效期内"
    # In time, the same key and content make a genuine signature, but not the file we issued.
    in_time = await verify_file(client, resealed(backdated, datetime.now(UTC)))
    assert in_time["failure"] == "file_altered"

    # Not a sealed certificate at all; a number that is not the one printed on it.
    not_sealed = await verify_file(client, b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF")
    assert not_sealed["failure"] == "not_sealed"
    mismatch = await verify_file(client, pdf, "YDP-1999-000001")
    assert mismatch["failure"] == "number_mismatch"
    assert licence["certificate"]["pdf_sha256"] == hashlib.sha256(pdf).hexdigest()


async def test_revoked_licence_is_shown_revoked_by_its_certificate(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue, serve_penalty_notice: ServeNotice
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    pdf = await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc))
    assert (await verify_file(client, pdf))["result"] == "valid"
    approver = tokens.staff(Role.APPROVER, "310000")
    await serve_penalty_notice(client, licence_no)
    suspended = await client.post(
        f"/api/v1/licences/{licence_no}/suspension", json=PENALTY, headers=approver
    )
    assert suspended.status_code == 200, suspended.text
    paused = await verify_file(client, pdf)
    assert paused["genuine"] and paused["status"] == "suspended" and not paused["valid_now"]
    assert paused["message"] == (
        f"证照真实，但许可证件已于{china_date_text(clock.today().isoformat())}被依法暂扣，"
        "暂扣期间不得使用"
    )
    reinstated = await client.post(
        f"/api/v1/licences/{licence_no}/reinstatement",
        json={"reason": "整改完成"},
        headers=approver,
    )
    assert reinstated.status_code == 200
    revoked = await client.post(
        f"/api/v1/licences/{licence_no}/revocation",
        json={
            "legal_basis": "《中华人民共和国行政许可法》第六十九条第二款",
            "reason": "以欺骗手段取得许可",
        },
        headers=approver,
    )
    assert revoked.status_code == 200, revoked.text
    verdict = await verify_file(client, pdf, licence_no)
    assert verdict["genuine"] is True and verdict["unaltered"] is True
    assert verdict["result"] == "not_valid" and verdict["valid_now"] is False
    assert verdict["status"] == "revoked" and verdict["status_label"] == "已撤销"
    today = china_date_text(clock.today().isoformat())
    assert verdict["message"] == (
        f"证照真实，但该行政许可已于{today}依法撤销（《行政许可法》第六十九条），"
        f"并已于{today}注销，不再有效"
    )
    by_number = (
        await client.get(
            "/api/v1/licences/verify",
            params={"licence_no": licence_no, "sha256": hashlib.sha256(pdf).hexdigest()},
        )
    ).json()
    assert by_number["status"] == "revoked" and by_number["unaltered"] is True
    # The holder still gets the file it was given (it records what was issued).
    assert (
        await download(client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(uscc)) == pdf
    )


async def test_reinstatement_event_names_the_certificate(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    issue: Issue,
    serve_penalty_notice: ServeNotice,
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc)
    licence = await holder_view(client, tokens, uscc, licence_no)
    approver = tokens.staff(Role.APPROVER, "310000")
    await serve_penalty_notice(client, licence_no)
    for action, body in (("suspension", PENALTY), ("reinstatement", {"reason": "整改完成"})):
        done = await client.post(
            f"/api/v1/licences/{licence_no}/{action}", json=body, headers=approver
        )
        assert done.status_code == 200, done.text
    events = await licence_events(app, licence_no)
    assert [t.split(".")[-2] for t, _ in events] == [
        "issued",
        "penalty_notified",
        "suspended",
        "changed",
    ]
    suspended, reinstated = events[2][1], events[3][1]
    assert suspended.document is None
    assert reinstated.document is not None
    assert str(reinstated.document.document_id) == licence["certificate"]["id"]


async def test_only_the_holder_staff_of_the_jurisdiction_and_services_download(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc, item_code="JXW-XK-001", jurisdiction="310115")
    other_no = await issue(uscc=random_uscc())
    licence = await holder_view(client, tokens, uscc, licence_no)
    current = f"/api/v1/licences/{licence_no}/pdf"
    by_id = licence["certificate"]["download_path"]
    for path in (current, by_id):
        for allowed in (
            tokens.enterprise(uscc),
            tokens.staff(Role.REVIEWER, "310115"),
            tokens.staff(Role.ACCEPTOR, "310000"),  # the city covers its districts
            tokens.staff(Role.ADMIN, "310118"),
            tokens.service("notify"),
        ):
            assert (await client.get(path, headers=allowed)).status_code == 200, (path, allowed)
        for stranger in (
            tokens.enterprise(random_uscc()),  # another enterprise
            tokens.staff(Role.APPROVER, "310118"),  # staff of another district
        ):
            hidden = await client.get(path, headers=stranger)
            assert hidden.status_code == 404
            body = problem(hidden)
            assert body["code"] == "licence_not_found" and licence_no in str(body["detail"])
            assert b"%PDF" not in hidden.content
        assert (await client.get(path)).status_code == 401
    # A certificate id of another licence under this licence's number is not found either.
    other = await holder_view(client, tokens, uscc, licence_no)
    foreign = (await client.get(f"/api/v1/licences/{other_no}", headers=tokens.service())).json()[
        "certificate"
    ]["id"]
    wrong = await client.get(
        f"/api/v1/licences/{licence_no}/certificates/{foreign}/pdf", headers=tokens.enterprise(uscc)
    )
    assert wrong.status_code == 404 and problem(wrong)["code"] == "certificate_not_found"
    assert other["certificate"]["id"] != foreign


async def test_register_and_list_show_certificates(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    uscc = random_uscc()
    licence_no = await issue(uscc=uscc, jurisdiction="310118", item_code="JXW-XK-003")
    page = (
        await client.get(
            "/api/v1/licences", params={"limit": 100}, headers=tokens.staff(Role.REVIEWER, "310118")
        )
    ).json()
    [listed] = [i for i in page["items"] if i["licence_no"] == licence_no]
    assert listed["certificate"]["status"] == "sealed"
    assert listed["certificate"]["download_path"].startswith(f"/api/v1/licences/{licence_no}/")


async def test_upload_limits(client: httpx.AsyncClient) -> None:
    not_pdf = await client.post(
        "/api/v1/licences/verify", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n...", "image/png")}
    )
    assert not_pdf.status_code == 415 and problem(not_pdf)["code"] == "unsupported_media_type"
    missing = await client.post("/api/v1/licences/verify")
    assert missing.status_code == 422


async def test_a_number_alone_shows_an_individual_holders_name_masked(
    client: httpx.AsyncClient, tokens: Tokens, issue: Issue
) -> None:
    # Licence numbers are sequential: a lookup by number alone must not list every 个体工商户
    # owner's name (个人信息保护法). It shows the name as the register publishes it; a caller
    # who presents the certificate (its QR digest, its file) sees the name printed on it.
    first17 = "92" + random_uscc()[2:17]
    individual = first17 + uscc_check_char(first17)
    licence_no = await issue(uscc=individual, applicant_name="张三丰")
    licence = (
        await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.enterprise(individual))
    ).json()
    by_number = await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
    assert by_number.status_code == 200, by_number.text
    assert by_number.json()["genuine"] and by_number.json()["holder_name"] == "张**"
    by_qr = await client.get(
        "/api/v1/licences/verify",
        params={"licence_no": licence_no, "digest": licence["certificate"]["content_digest"]},
    )
    assert by_qr.json()["holder_name"] == "张三丰"
    pdf = await download(
        client, f"/api/v1/licences/{licence_no}/pdf", tokens.enterprise(individual)
    )
    assert (await verify_file(client, pdf))["holder_name"] == "张三丰"
    # An enterprise's name is public (企业信息公示): shown whole by number too.
    company = random_uscc()
    company_no = await issue(uscc=company, applicant_name="上海盐业示范有限公司")
    shown = await client.get("/api/v1/licences/verify", params={"licence_no": company_no})
    assert shown.json()["holder_name"] == "上海盐业示范有限公司"
