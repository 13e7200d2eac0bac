"""Issue 7's "delivered through notify": sealed notices, decisions and licence certificates reach the
enterprise on every channel; email carries the PDF, fetched from the issuing service with notify's
service token and checked against its published hash, or is not sent at all."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.events import CloudEvent, EventType, NotificationDeliveredData, parse_data
from govshared.testing import Tokens, problem, random_uscc
from notify.context import context_of
from notify.db import outbox_events
from notify.models import InboxMessage

from ..conftest import (
    PORTAL,
    DocumentPeer,
    MailSink,
    Outside,
    document_event,
    document_ref,
    drain,
    licence_event,
    post_events,
    sealed_pdf,
)
from .test_channels import deliveries_of, history_of, mobile, set_profile

NOTIFY_SERVICE = "service:notify"


def attachments_of(mail: EmailMessage) -> list[tuple[str | None, str, bytes]]:
    """(file name, media type, bytes) of each attachment."""
    return [
        (part.get_filename(), part.get_content_type(), part.get_content())
        for part in mail.iter_attachments()
    ]


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


async def proofs_of(session: AsyncSession, event_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(destination, envelope) of the proofs of service written for an event."""
    rows = (
        await session.execute(
            select(outbox_events.c.destination, outbox_events.c.payload).where(
                outbox_events.c.payload.contains(event_id)
            )
        )
    ).all()
    await session.commit()
    return [(r.destination, json.loads(r.payload)) for r in rows]


async def inbox_items(client: httpx.AsyncClient, tokens: Tokens, uscc: str) -> list[Any]:
    response = await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_a_sealed_notice_is_served_on_every_channel_and_the_email_carries_the_pdf(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    outside: Outside,
    documents: DocumentPeer,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"doc-{uscc.lower()}@example.com"
    phone = mobile()
    zone = "Asia/Shanghai"
    local_now = datetime.now(UTC).astimezone(ZoneInfo(zone))
    # Preferences off and quiet hours now: a statutory service ignores both.
    await set_profile(
        client,
        tokens,
        uscc,
        email=address,
        mobile=phone,
        time_zone=zone,
        quiet_start=(local_now - timedelta(hours=1)).strftime("%H:%M"),
        quiet_end=(local_now + timedelta(hours=1)).strftime("%H:%M"),
        disabled_channels=["email", "sms", "webhook"],
    )
    hook = f"erp-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": outside.webhook_url(hook), "event_types": ["cn.gov.approval.document.*"]},
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    pdf = sealed_pdf("受理通知书")
    reference = document_ref(pdf)
    path = reference["download_path"]
    documents.serve("approval", path, pdf)
    event = document_event(uscc, reference)

    posted = await post_events(client, tokens, [event])
    assert posted.status_code == 200, posted.text
    assert posted.json()["results"] == [
        {"id": event["id"], "outcome": "accepted", "notices": 4, "error": None}
    ]
    await drain(app)

    # In-app: the text, and the reference the portal's download button needs.
    (message,) = await inbox_items(client, tokens, uscc)
    assert message["critical"] is True
    assert message["event_type"] == "cn.gov.approval.document.issued.v1"
    assert message["title"] == "文书送达：《受理通知书》"
    assert "《受理通知书》（文号 310000〔2026〕受字第3A9F01C2号）已加盖电子印章" in message["body"]
    assert f"下载：{PORTAL}{path}" in message["body"]
    assert f"核验：{reference['verify_url']}" in message["body"]
    assert message["document"] == {**reference, "download_url": PORTAL + path}
    one = await client.get(f"/api/v1/inbox/{message['id']}", headers=tokens.enterprise(uscc))
    assert one.json()["document"]["pdf_sha256"] == hashlib.sha256(pdf).hexdigest()

    # Email through the real SMTP server, with the PDF byte for byte under its number.
    (mail,) = sink.to(address)
    assert mail["Subject"] == "文书送达：《受理通知书》"
    assert "附件：310000〔2026〕受字第3A9F01C2号.pdf" in text_of(mail)
    assert f"下载：{PORTAL}{path}" in text_of(mail)
    ((filename, media_type, content),) = attachments_of(mail)
    assert (filename, media_type) == ("310000〔2026〕受字第3A9F01C2号.pdf", "application/pdf")
    assert content == pdf
    assert hashlib.sha256(content).hexdigest() == reference["pdf_sha256"]
    # Fetched once, from approval, with notify's own service token.
    assert documents.requests_for(path) == [("approval", path, NOTIFY_SERVICE)]

    # SMS: only the short approved text.
    (sms,) = outside.sms_to(phone)
    assert sms["template_id"] == "SMS_DOCUMENT_ISSUED"
    assert sms["params"] == {
        "item_name": "食盐定点批发企业审批",
        "application_no": event["data"]["application_no"],
        "document_title": "受理通知书",
    }
    # Webhook: the reference and links, not the file.
    ((_, body),) = outside.webhooks[hook]
    payload = json.loads(body)
    assert payload["critical"] is True
    assert payload["document"] == {**reference, "download_url": PORTAL + path}
    assert b"%PDF" not in body

    # Proof of service goes back to approval for each delivered channel.
    deliveries = await deliveries_of(session, event["id"])
    assert {c: d.status for c, d in deliveries.items()} == {
        "inbox": "delivered",
        "email": "delivered",
        "sms": "sent",
        "webhook": "delivered",
    }
    proofs = await proofs_of(session, event["id"])
    assert {destination for destination, _ in proofs} == {"approval"}
    assert {p["data"]["channel"] for _, p in proofs} == {"inbox", "email", "webhook"}
    for _, envelope in proofs:
        data = parse_data(CloudEvent.model_validate(envelope))
        assert isinstance(data, NotificationDeliveredData)
        assert data.cause_event_type == EventType.DOCUMENT_ISSUED
        assert data.subject == event["subject"] == event["data"]["application_id"]


async def test_a_redelivered_document_event_serves_nothing_twice(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    documents: DocumentPeer,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"again-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, email=address)
    pdf = sealed_pdf("补正告知书")
    reference = document_ref(
        pdf, kind="supplement", title="补正告知书", number="310000〔2026〕补字第1号"
    )
    documents.serve("approval", reference["download_path"], pdf)
    event = document_event(uscc, reference)
    await post_events(client, tokens, [event])
    await drain(app)
    again = await post_events(client, tokens, [event])
    assert again.json()["results"][0]["outcome"] == "duplicate"
    await drain(app)

    assert len(await inbox_items(client, tokens, uscc)) == 1
    assert len(sink.to(address)) == 1
    assert len(documents.requests_for(reference["download_path"])) == 1
    count = await session.scalar(
        select(func.count()).select_from(InboxMessage).where(InboxMessage.event_id == event["id"])
    )
    await session.commit()
    assert count == 1


async def test_another_enterprise_cannot_see_the_served_document(
    client: httpx.AsyncClient, tokens: Tokens, documents: DocumentPeer
) -> None:
    owner, other = random_uscc(), random_uscc()
    pdf = sealed_pdf("不予行政许可决定书")
    reference = document_ref(pdf, kind="denial", title="不予行政许可决定书")
    documents.serve("approval", reference["download_path"], pdf)
    await post_events(client, tokens, [document_event(owner, reference)])
    (message,) = await inbox_items(client, tokens, owner)
    assert message["document"]["document_id"] == reference["document_id"]

    theirs = tokens.enterprise(other)
    hidden = await client.get(f"/api/v1/inbox/{message['id']}", headers=theirs)
    assert hidden.status_code == 404
    assert problem(hidden)["code"] == "message_not_found"
    assert reference["document_id"] not in hidden.text
    assert await inbox_items(client, tokens, other) == []
    marked = await client.post(f"/api/v1/inbox/{message['id']}/read", headers=theirs)
    assert marked.status_code == 404


async def test_a_pdf_that_does_not_match_its_hash_is_never_sent_and_dead_letters(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    documents: DocumentPeer,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"tampered-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, email=address)
    pdf = sealed_pdf("准予行政许可决定书")
    reference = document_ref(pdf, kind="approval", title="准予行政许可决定书")
    path = reference["download_path"]
    tampered = pdf.replace(b"onestop", b"0nestop")  # same size, other bytes
    assert len(tampered) == len(pdf) and tampered != pdf
    documents.serve("approval", path, tampered)
    event = document_event(uscc, reference)
    response = await post_events(client, tokens, [event])
    assert response.status_code == 200
    await drain(app)

    email = (await deliveries_of(session, event["id"]))["email"]
    assert email.status == "dead"
    assert email.attempts == app.state.settings.delivery_max_attempts == 3
    assert "文书与登记不符" in (email.last_error or "")
    assert await history_of(session, email.id) == [
        "queued",
        "sending",
        "failed",
        "sending",
        "failed",
        "sending",
        "dead",
    ]
    assert len(documents.requests_for(path)) == 3
    assert sink.to(address) == []  # never without the attachment it announces
    # The notice itself still reached the inbox (and was reported served there).
    assert len(await inbox_items(client, tokens, uscc)) == 1
    proofs = await proofs_of(session, event["id"])
    assert [p["data"]["channel"] for _, p in proofs] == ["inbox"]

    # A longer file is cut off at the registered size, and fails the same way.
    documents.serve("approval", path, pdf + b"appended")
    staff = tokens.staff(Role.ACCEPTOR, "310000")
    replayed = await client.post(f"/api/v1/deliveries/{email.id}/replay", headers=staff)
    assert replayed.status_code == 200, replayed.text
    await drain(app)
    email = (await deliveries_of(session, event["id"]))["email"]
    assert email.status == "dead"
    assert f"超过登记的 {len(pdf)} 字节" in (email.last_error or "")
    assert sink.to(address) == []

    # Once approval serves the file as issued, staff replay the dead letter and it goes out.
    documents.serve("approval", path, pdf)
    replayed = await client.post(f"/api/v1/deliveries/{email.id}/replay", headers=staff)
    assert replayed.status_code == 200, replayed.text
    await drain(app)
    (mail,) = sink.to(address)
    ((_, _, content),) = attachments_of(mail)
    assert content == pdf
    assert (await deliveries_of(session, event["id"]))["email"].status == "delivered"


async def test_a_peer_that_is_down_is_retried_and_the_email_goes_once_it_is_up(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    documents: DocumentPeer,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"down-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, email=address)
    pdf = sealed_pdf("不予受理通知书")
    reference = document_ref(
        pdf, kind="rejection", title="不予受理通知书", number="310000〔2026〕不受字第7号"
    )
    documents.serve("approval", reference["download_path"], pdf)
    event = document_event(uscc, reference)
    await documents.stop()
    try:
        await post_events(client, tokens, [event])
        assert await context_of(app).delivery_worker.run_once() >= 1
        email = (await deliveries_of(session, event["id"]))["email"]
        assert email.status == "failed"
        assert "文书下载失败" in (email.last_error or "")
        assert "ConnectError" in (email.last_error or "")
        assert sink.to(address) == []
    finally:
        await documents.start()
    await drain(app)

    email = (await deliveries_of(session, event["id"]))["email"]
    assert email.status == "delivered"
    assert email.attempts == 2
    assert await history_of(session, email.id) == [
        "queued",
        "sending",
        "failed",
        "sending",
        "delivered",
    ]
    (mail,) = sink.to(address)
    assert attachments_of(mail) == [("310000〔2026〕不受字第7号.pdf", "application/pdf", pdf)]


async def test_a_licence_certificate_is_attached_to_the_licence_email(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    documents: DocumentPeer,
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"licence-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, email=address)
    licence_no = f"JY310000{uuid.uuid4().hex[:8].upper()}"
    pdf = sealed_pdf("食盐定点批发许可证")
    reference = document_ref(
        pdf,
        kind="licence",
        title="食盐定点批发许可证",
        number=licence_no,
        download_path=f"/api/v1/licences/{licence_no}/pdf",
    )
    documents.serve("license", reference["download_path"], pdf)
    issued = licence_event(
        EventType.LICENCE_ISSUED, uscc, licence_no=licence_no, document=reference
    )
    # A licence changed without a new certificate is told as before, with nothing attached.
    changed = licence_event(EventType.LICENCE_CHANGED, uscc, licence_no=licence_no)
    await post_events(client, tokens, [issued, changed])
    await drain(app)

    mails = {str(m["Subject"]): m for m in sink.to(address)}
    assert set(mails) == {"许可证已颁发：食盐定点批发许可证", "许可证已变更：食盐定点批发许可证"}
    mail = mails["许可证已颁发：食盐定点批发许可证"]
    assert f"《食盐定点批发许可证》（证书编号 {licence_no}）已加盖电子印章" in text_of(mail)
    assert attachments_of(mail) == [(f"{licence_no}.pdf", "application/pdf", pdf)]
    assert attachments_of(mails["许可证已变更：食盐定点批发许可证"]) == []
    assert documents.requests_for(reference["download_path"]) == [
        ("license", reference["download_path"], NOTIFY_SERVICE)
    ]
    messages = {m["event_type"]: m for m in await inbox_items(client, tokens, uscc)}
    assert messages[str(EventType.LICENCE_ISSUED)]["document"]["number"] == licence_no
    assert messages[str(EventType.LICENCE_CHANGED)]["document"] is None
    # The email of the issued licence is reported served to license, the issuer.
    proofs = await proofs_of(session, issued["id"])
    assert {(d, p["data"]["channel"]) for d, p in proofs} == {
        ("license", "inbox"),
        ("license", "email"),
    }
