"""Issue 6's "done when": email, webhook and SMS reach real local servers; retries, dead letters,
replay, fallback, quiet hours, no duplicates, and enterprises kept apart."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import notify.delivery
from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.channels.sms import receipt_signature
from notify.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from notify.db import outbox_events
from notify.models import Channel, Delivery, DeliveryStatusChange, InboxMessage
from notify.templates import TemplateSpec

from ..conftest import RECEIPT_SECRET, MailSink, Outside, application_event, drain, post_events


def mobile() -> str:
    """A random mobile number."""
    return "139" + str(uuid.uuid4().int)[:8]


async def set_profile(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str, **profile: object
) -> None:
    response = await client.put(
        "/api/v1/preferences", json=profile, headers=tokens.enterprise(uscc)
    )
    assert response.status_code == 200, response.text


async def deliveries_of(session: AsyncSession, event_id: str) -> dict[str, Delivery]:
    session.expire_all()
    rows = (await session.scalars(select(Delivery).where(Delivery.event_id == event_id))).all()
    await session.commit()  # SQLite: a reader's open transaction would hold the write lock
    return {r.channel: r for r in rows}


async def history_of(session: AsyncSession, delivery_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        select(DeliveryStatusChange.status)
        .where(DeliveryStatusChange.delivery_id == delivery_id)
        .order_by(DeliveryStatusChange.id)
    )
    statuses = list(rows.all())
    await session.commit()
    return statuses


async def test_email_reaches_a_real_smtp_server(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"ent-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, email=address)
    event = application_event(EventType.APPLICATION_ACCEPTED, uscc, due_on="2026-12-25")
    await post_events(client, tokens, [event])
    await drain(app)

    received = sink.to(address)
    assert len(received) == 1
    mail = received[0]
    assert mail["Subject"] == "受理通知：食盐定点批发企业审批"
    text = mail.get_content()
    assert "已受理。法定办结期限为2026年12月25日。" in text
    email = (await deliveries_of(session, event["id"]))["email"]
    assert email.status == "delivered"
    assert await history_of(session, email.id) == ["queued", "sending", "delivered"]
    assert mail["X-Onestop-Delivery"] == str(email.id)

    # Redelivering the event and running the worker again sends nothing new.
    await post_events(client, tokens, [event])
    await drain(app)
    assert len(sink.to(address)) == 1


async def test_smtp_connections_stay_open_across_messages(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, smtp: tuple[MailSink, int]
) -> None:
    sink, _ = smtp
    await drain(app)
    before = sink.connections
    events = []
    for _ in range(12):
        uscc = random_uscc()
        await set_profile(client, tokens, uscc, email=f"{uscc.lower()}@example.com")
        events.append(application_event(EventType.APPLICATION_SUBMITTED, uscc))
    await post_events(client, tokens, events)
    await drain(app)
    assert all(
        len(sink.to(f"{e['data']['applicant_uscc'].lower()}@example.com")) == 1 for e in events
    )
    # At most the pool's connections were opened for twelve messages (none if already open).
    assert sink.connections - before <= app.state.settings.smtp_connections


async def test_webhook_is_signed_and_verified_by_a_real_receiver(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    name = f"erp-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": outside.webhook_url(name), "event_types": ["cn.gov.approval.application.*"]},
        headers=tokens.enterprise(uscc),
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    event = application_event(EventType.APPLICATION_APPROVED, uscc)
    licence_event = {**application_event(EventType.APPLICATION_SUBMITTED, uscc)}
    licence_event["type"] = "cn.gov.license.licence.expired.v1"  # not subscribed: no webhook
    await post_events(client, tokens, [event])
    await drain(app)

    calls = outside.webhooks[name]
    assert len(calls) == 1
    headers, body = calls[0]
    assert verify(
        secret,
        timestamp=headers[TIMESTAMP_HEADER.lower()],
        body=body,
        header=headers[SIGNATURE_HEADER.lower()],
    )
    assert not verify(
        "whsec_wrong",
        timestamp=headers[TIMESTAMP_HEADER.lower()],
        body=body,
        header=headers[SIGNATURE_HEADER.lower()],
    )
    payload = json.loads(body)
    assert payload["event"]["id"] == event["id"]
    assert payload["critical"] is True
    assert payload["title"] == "准予行政许可决定：食盐定点批发企业审批"
    webhook = (await deliveries_of(session, event["id"]))["webhook"]
    assert webhook.status == "delivered"

    # Rotation: during the grace period both the new and the old secret verify.
    rotated = await client.post(
        f"/api/v1/webhooks/{created.json()['id']}/rotate-secret",
        headers=tokens.enterprise(uscc),
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != secret
    second = application_event(EventType.APPLICATION_DENIED, uscc, reason="不符合条件")
    await post_events(client, tokens, [second])
    await drain(app)
    headers, body = outside.webhooks[name][-1]
    for key in (secret, new_secret):
        assert verify(
            key,
            timestamp=headers[TIMESTAMP_HEADER.lower()],
            body=body,
            header=headers[SIGNATURE_HEADER.lower()],
        )


async def test_sms_through_the_provider_with_a_delivery_receipt(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    phone = mobile()
    await set_profile(client, tokens, uscc, mobile=phone)
    event = application_event(
        EventType.APPLICATION_ACCEPTED, uscc, application_no="310000-20261128-SMS00001"
    )
    await post_events(client, tokens, [event])
    await drain(app)

    sent = outside.sms_to(phone)
    assert len(sent) == 1
    assert sent[0]["template_id"] == "SMS_ACCEPTED"
    assert sent[0]["sign_name"] == "一网通办"
    assert sent[0]["params"] == {
        "application_no": "310000-20261128-SMS00001",
        "item_name": "食盐定点批发企业审批",
    }
    sms = (await deliveries_of(session, event["id"]))["sms"]
    assert sms.status == "sent"
    assert sms.provider_message_id == sent[0]["message_id"]

    receipt = json.dumps({"message_id": sent[0]["message_id"], "status": "delivered"}).encode()
    timestamp = str(int(time.time()))
    forged = await client.post(
        "/api/v1/receipts/sms",
        content=receipt,
        headers={"X-Onestop-Timestamp": timestamp, "X-Onestop-Signature": "v1=00"},
    )
    assert forged.status_code == 401
    assert problem(forged)["code"] == "invalid_receipt_signature"
    signed = {
        "X-Onestop-Timestamp": timestamp,
        "X-Onestop-Signature": "v1=" + receipt_signature(RECEIPT_SECRET, timestamp, receipt),
        "Content-Type": "application/json",
    }
    response = await client.post("/api/v1/receipts/sms", content=receipt, headers=signed)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "delivered"
    repeated = await client.post("/api/v1/receipts/sms", content=receipt, headers=signed)
    assert repeated.json()["status"] == "delivered"
    sms = (await deliveries_of(session, event["id"]))["sms"]
    assert await history_of(session, sms.id) == ["queued", "sending", "sent", "delivered"]
    proofs = (
        await session.execute(
            select(outbox_events.c.payload).where(outbox_events.c.payload.contains(event["id"]))
        )
    ).scalars()
    assert {json.loads(p)["data"]["channel"] for p in proofs} == {"inbox", "sms"}
    await session.commit()

    # A failed receipt counts as a failed attempt: the worker tries again.
    failing = application_event(EventType.APPLICATION_REJECTED, uscc, reason="不属于本机关职权")
    await post_events(client, tokens, [failing])
    await drain(app)
    message_id = outside.sms_to(phone)[-1]["message_id"]
    receipt = json.dumps({"message_id": message_id, "status": "failed", "error_code": "MK:0001"})
    signed = {
        "X-Onestop-Timestamp": timestamp,
        "X-Onestop-Signature": receipt_signature(RECEIPT_SECRET, timestamp, receipt.encode()),
    }
    response = await client.post("/api/v1/receipts/sms", content=receipt, headers=signed)
    assert response.json()["status"] == "failed"
    assert "MK:0001" in response.json()["last_error"]
    await drain(app)
    assert len(outside.sms_to(phone)) == 3
    unknown = json.dumps({"message_id": "nope", "status": "delivered"})
    signed = {
        "X-Onestop-Timestamp": timestamp,
        "X-Onestop-Signature": receipt_signature(RECEIPT_SECRET, timestamp, unknown.encode()),
    }
    missing = await client.post("/api/v1/receipts/sms", content=unknown, headers=signed)
    assert missing.status_code == 404


OPTIONAL_SMS = (
    "您的{{ item_name }}申请{{ application_no }}已受理"
    "{% if download_url is defined %}，下载：{{ download_url }}{% endif %}。"
)


async def test_an_sms_template_with_an_optional_variable_sends_without_it(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    published = await client.post(
        "/api/v1/templates",
        json={
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "channel": "sms",
            "body": OPTIONAL_SMS,
            "sms_template_id": "SMS_ACCEPTED_V2",
        },
        headers=tokens.header(Role.ADMIN),
    )
    assert published.status_code == 201, published.text
    uscc = random_uscc()
    phone = mobile()
    await set_profile(client, tokens, uscc, mobile=phone)
    # An event without download_url: accepted (a 5xx would make the relay resend it forever).
    event = application_event(
        EventType.APPLICATION_ACCEPTED, uscc, application_no="310000-20261128-OPT00001"
    )
    response = await post_events(client, tokens, [event])
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["outcome"] == "accepted"
    await drain(app)
    sent = outside.sms_to(phone)
    assert [(m["template_id"], m["params"]) for m in sent] == [
        (
            "SMS_ACCEPTED_V2",
            {
                "item_name": "食盐定点批发企业审批",
                "application_no": "310000-20261128-OPT00001",
                "download_url": "",
            },
        )
    ]
    sms = (await deliveries_of(session, event["id"]))["sms"]
    assert sms.status == "sent"
    assert sms.body == "您的食盐定点批发企业审批申请310000-20261128-OPT00001已受理。"

    # A direct notice with the same template is accepted too, not a 500.
    direct = await client.post(
        "/api/v1/notifications",
        json={
            "recipient_uscc": uscc,
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "data": {"item_name": "公共场所卫生许可", "application_no": "310000-D-2"},
            "channels": ["sms"],
        },
        headers=tokens.service("approval"),
    )
    assert direct.status_code == 202, direct.text
    assert [(d["channel"], d["status"]) for d in direct.json()["deliveries"]] == [("sms", "queued")]
    await drain(app)
    assert outside.sms_to(phone)[-1]["params"] == {
        "item_name": "公共场所卫生许可",
        "application_no": "310000-D-2",
        "download_url": "",
    }


async def test_an_unexpected_render_error_is_a_dead_letter_not_a_failed_intake(
    client: httpx.AsyncClient,
    tokens: Tokens,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = notify.delivery.render

    def broken_sms(spec: TemplateSpec, *args: Any) -> Any:
        if spec.channel is Channel.SMS:
            raise RuntimeError("a bug no template should reach")
        return real(spec, *args)

    monkeypatch.setattr(notify.delivery, "render", broken_sms)
    uscc = random_uscc()
    await set_profile(client, tokens, uscc, mobile=mobile())
    event = application_event(EventType.APPLICATION_ACCEPTED, uscc)
    response = await post_events(client, tokens, [event])
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["outcome"] == "accepted"
    deliveries = await deliveries_of(session, event["id"])
    assert deliveries["inbox"].status == "delivered"
    assert deliveries["sms"].status == "dead"
    assert "RuntimeError" in (deliveries["sms"].last_error or "")
    dead = (await client.get("/api/v1/deliveries", headers=tokens.staff(Role.ACCEPTOR))).json()
    assert deliveries["sms"].id in {uuid.UUID(d["id"]) for d in dead["items"]}
    # A direct notice is answered at once: a 422 problem, not a 500.
    direct = await client.post(
        "/api/v1/notifications",
        json={
            "recipient_uscc": uscc,
            "event_type": str(EventType.APPLICATION_ACCEPTED),
            "data": {"item_name": "公共场所卫生许可", "application_no": "310000-D-3"},
            "channels": ["sms"],
        },
        headers=tokens.service("approval"),
    )
    assert direct.status_code == 422, direct.text
    assert problem(direct)["code"] == "template_render_failed"


async def test_a_receipt_with_a_huge_timestamp_or_a_non_ascii_signature_is_refused(
    client: httpx.AsyncClient,
) -> None:
    receipt = json.dumps({"message_id": "sms-x", "status": "delivered"}).encode()
    timestamp = str(int(time.time()))
    for headers in (
        {"X-Onestop-Timestamp": "1" + "0" * 400, "X-Onestop-Signature": "v1=00"},
        {
            "X-Onestop-Timestamp": "1" + "0" * 400,
            "X-Onestop-Signature": "v1="
            + receipt_signature(RECEIPT_SECRET, "1" + "0" * 400, receipt),
        },
        {"X-Onestop-Timestamp": timestamp, "X-Onestop-Signature": "v1=é".encode()},
        {
            "X-Onestop-Timestamp": timestamp,
            "X-Onestop-Signature": (
                "v1=" + receipt_signature(RECEIPT_SECRET, timestamp, receipt)[:-1] + "é"
            ).encode(),
        },
    ):
        response = await client.post("/api/v1/receipts/sms", content=receipt, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert problem(response)["code"] == "invalid_receipt_signature"


async def test_retries_then_dead_letter_then_replay(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    name = f"down-{uuid.uuid4().hex[:8]}"
    outside.webhook_status[name] = 503
    await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url(name)}, headers=tokens.enterprise(uscc)
    )
    jurisdiction = "310115"
    event = application_event(EventType.APPLICATION_SUBMITTED, uscc, jurisdiction=jurisdiction)
    await post_events(client, tokens, [event])
    await drain(app)

    webhook = (await deliveries_of(session, event["id"]))["webhook"]
    assert webhook.status == "dead"
    assert webhook.attempts == app.state.settings.delivery_max_attempts == 3
    assert len(outside.webhooks[name]) == 3
    assert "HTTP 503" in (webhook.last_error or "")
    assert await history_of(session, webhook.id) == [
        "queued",
        "sending",
        "failed",
        "sending",
        "failed",
        "sending",
        "dead",
    ]

    staff = tokens.staff(Role.ACCEPTOR, jurisdiction)
    dead = await client.get("/api/v1/deliveries", params={"status": "dead"}, headers=staff)
    assert str(webhook.id) in [d["id"] for d in dead.json()["items"]]
    elsewhere = tokens.staff(Role.ACCEPTOR, "440300")
    hidden = await client.get(f"/api/v1/deliveries/{webhook.id}", headers=elsewhere)
    assert hidden.status_code == 404
    assert problem(hidden)["code"] == "delivery_not_found"
    by_enterprise = await client.get("/api/v1/deliveries", headers=tokens.enterprise(uscc))
    assert by_enterprise.status_code == 403

    outside.webhook_status[name] = 200
    replayed = await client.post(f"/api/v1/deliveries/{webhook.id}/replay", headers=staff)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "queued"
    twice = await client.post(f"/api/v1/deliveries/{webhook.id}/replay", headers=staff)
    assert twice.status_code == 409
    assert problem(twice)["code"] == "delivery_not_replayable"
    await drain(app)
    detail = await client.get(f"/api/v1/deliveries/{webhook.id}", headers=staff)
    assert detail.json()["status"] == "delivered"
    assert [h["status"] for h in detail.json()["history"]][-3:] == [
        "queued",
        "sending",
        "delivered",
    ]
    assert len(outside.webhooks[name]) == 4


async def test_failed_sms_falls_back_to_inbox_and_email(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
    smtp: tuple[MailSink, int],
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"fallback-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, mobile=mobile(), email=address)
    outside.sms_status = 400  # the provider refuses: a permanent failure
    try:
        response = await client.post(
            "/api/v1/notifications",
            json={
                "recipient_uscc": uscc,
                "event_type": str(EventType.APPLICATION_APPROVED),
                "data": {"item_name": "食品经营许可", "application_no": "310000-FB-1"},
                "channels": ["sms"],
            },
            headers=tokens.service("approval"),
        )
        assert response.status_code == 202, response.text
        assert [d["channel"] for d in response.json()["deliveries"]] == ["sms"]
        await drain(app)
    finally:
        outside.sms_status = 200
    event_id = response.json()["event_id"]
    deliveries = await deliveries_of(session, event_id)
    assert deliveries["sms"].status == "dead"
    assert deliveries["inbox"].fallback_of == deliveries["sms"].id
    assert deliveries["email"].fallback_of == deliveries["sms"].id
    assert deliveries["email"].status == "delivered"
    assert len(sink.to(address)) == 1
    inbox = (await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))).json()["items"]
    assert [m["title"] for m in inbox] == ["准予行政许可决定：食品经营许可"]


async def test_quiet_hours_hold_back_normal_sms_but_not_critical(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    phone = mobile()
    zone = "Asia/Urumqi"
    local_now = datetime.now(UTC).astimezone(ZoneInfo(zone))
    start = (local_now - timedelta(hours=1)).time().replace(microsecond=0, second=0)
    end = (local_now + timedelta(hours=1)).time().replace(microsecond=0, second=0)
    await set_profile(
        client,
        tokens,
        uscc,
        mobile=phone,
        time_zone=zone,
        quiet_start=start.isoformat(),
        quiet_end=end.isoformat(),
    )
    normal = application_event(EventType.APPLICATION_SUBMITTED, uscc)
    critical = application_event(EventType.APPLICATION_DENIED, uscc, reason="材料虚假")
    await post_events(client, tokens, [normal, critical])
    await drain(app)

    assert [m["template_id"] for m in outside.sms_to(phone)] == ["SMS_DENIED"]
    held = (await deliveries_of(session, normal["id"]))["sms"]
    assert held.status == "queued"
    assert held.next_attempt_at > datetime.now(UTC) + timedelta(minutes=50)
    changes = (
        await session.scalars(
            select(DeliveryStatusChange).where(DeliveryStatusChange.delivery_id == held.id)
        )
    ).all()
    assert any("免打扰" in (c.detail or "") for c in changes)
    # Quiet hours hold back SMS only: the inbox message is there at once.
    titles = [
        m["title"]
        for m in (await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))).json()[
            "items"
        ]
    ]
    assert "申请已提交：食盐定点批发企业审批" in titles


async def test_preferences_off_for_normal_notices_but_critical_still_sent(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
) -> None:
    sink, _ = smtp
    uscc = random_uscc()
    address = f"pref-{uscc.lower()}@example.com"
    await set_profile(client, tokens, uscc, email=address, disabled_channels=["email"])
    normal = application_event(EventType.APPLICATION_SUBMITTED, uscc)
    critical = application_event(EventType.APPLICATION_ACCEPTED, uscc)
    await post_events(client, tokens, [normal, critical])
    await drain(app)
    assert [m["Subject"] for m in sink.to(address)] == ["受理通知：食盐定点批发企业审批"]
    assert "email" not in await deliveries_of(session, normal["id"])


async def test_rate_limit_per_recipient_and_channel(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    phone = mobile()
    await set_profile(client, tokens, uscc, mobile=phone)
    events = [application_event(EventType.APPLICATION_SUBMITTED, uscc) for _ in range(5)]
    events.append(application_event(EventType.APPLICATION_APPROVED, uscc))
    await post_events(client, tokens, events)
    await drain(app)
    limit = app.state.settings.rate_limit_sms_per_hour
    sent = outside.sms_to(phone)
    assert len(sent) == limit + 1  # the limit, plus the critical notice that ignores it
    assert "SMS_APPROVED" in [m["template_id"] for m in sent]
    statuses = [(await deliveries_of(session, e["id"]))["sms"].status for e in events[:5]]
    assert statuses.count("queued") == 5 - limit


async def test_enterprise_cannot_manage_another_enterprises_webhooks(
    client: httpx.AsyncClient, tokens: Tokens, outside: Outside
) -> None:
    owner, other = random_uscc(), random_uscc()
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": outside.webhook_url("owner")},
        headers=tokens.enterprise(owner),
    )
    webhook_id = created.json()["id"]
    theirs = tokens.enterprise(other)
    assert (await client.get("/api/v1/webhooks", headers=theirs)).json() == []
    for response in (
        await client.get(f"/api/v1/webhooks/{webhook_id}", headers=theirs),
        await client.delete(f"/api/v1/webhooks/{webhook_id}", headers=theirs),
        await client.post(f"/api/v1/webhooks/{webhook_id}/rotate-secret", headers=theirs),
    ):
        assert response.status_code == 404
        assert problem(response)["code"] == "webhook_not_found"
    staff = await client.get("/api/v1/webhooks", headers=tokens.staff(Role.ACCEPTOR))
    assert staff.status_code == 403
    mine = await client.get(f"/api/v1/webhooks/{webhook_id}", headers=tokens.enterprise(owner))
    assert mine.status_code == 200
    assert "secret" not in mine.json()
    deleted = await client.delete(
        f"/api/v1/webhooks/{webhook_id}", headers=tokens.enterprise(owner)
    )
    assert deleted.status_code == 204

    bad = await client.post(
        "/api/v1/webhooks",
        json={"url": "ftp://example.com/x"},
        headers=tokens.enterprise(owner),
    )
    assert bad.status_code == 422
    assert problem(bad)["code"] == "invalid_webhook_url"


async def test_direct_notification_is_idempotent(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    body = {
        "recipient_uscc": uscc,
        "event_type": str(EventType.APPLICATION_SUBMITTED),
        "data": {"item_name": "公共场所卫生许可", "application_no": "310000-D-1"},
    }
    # A service asks only for notices of its own events: license cannot send approval's.
    impostor = await client.post(
        "/api/v1/notifications", json=body, headers=tokens.service("license")
    )
    assert impostor.status_code == 403
    assert problem(impostor)["code"] == "event_producer_mismatch"
    headers = {**tokens.service("approval"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/api/v1/notifications", json=body, headers=headers)
    assert first.status_code == 202, first.text
    again = await client.post("/api/v1/notifications", json=body, headers=headers)
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert [d["channel"] for d in first.json()["deliveries"]] == ["inbox"]
    count = await session.scalar(
        select(func.count()).select_from(InboxMessage).where(InboxMessage.recipient == uscc)
    )
    assert count == 1
    await session.commit()
    changed = await client.post(
        "/api/v1/notifications", json={**body, "subject": "x"}, headers=headers
    )
    assert changed.status_code == 422
    assert problem(changed)["code"] == "idempotency_key_reused"

    missing = await client.post(
        "/api/v1/notifications",
        json={**body, "data": {"item_name": "缺少办件编号"}},
        headers=tokens.service("approval"),
    )
    assert missing.status_code == 422
    assert problem(missing)["code"] == "template_render_failed"
    assert "application_no" in str(problem(missing)["detail"])
    unknown = await client.post(
        "/api/v1/notifications",
        json={**body, "event_type": "cn.gov.approval.unknown.v1"},
        headers=tokens.service("approval"),
    )
    assert unknown.status_code == 404
    assert problem(unknown)["code"] == "template_not_found"
    enterprise = await client.post(
        "/api/v1/notifications", json=body, headers=tokens.enterprise(uscc)
    )
    assert enterprise.status_code == 403
