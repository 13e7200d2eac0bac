"""A webhook whose template failed is replayed with the whole notice, never as an empty ``{}``
that the receiver's 2xx would turn into proof of service (送达) for a notice that said nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from notify.db import outbox_events
from notify.models import Delivery

from ..conftest import Outside, application_event, drain, post_events


async def webhook_of(session: AsyncSession, event_id: str) -> Delivery:
    session.expire_all()
    row = (
        await session.scalars(
            select(Delivery).where(Delivery.event_id == event_id, Delivery.channel == "webhook")
        )
    ).one()
    await session.commit()  # SQLite: a reader's open transaction would hold the write lock
    return row


async def proofs_of(session: AsyncSession, event_id: str) -> list[dict[str, Any]]:
    """The notification.delivered events written for the event's notices (channel, ...)."""
    rows = (
        await session.execute(
            select(outbox_events.c.payload).where(outbox_events.c.payload.contains(event_id))
        )
    ).scalars()
    events = [json.loads(p) for p in rows]
    await session.commit()
    return [e["data"] for e in events if e["data"]["cause_event_id"] == event_id]


async def publish(client: httpx.AsyncClient, tokens: Tokens, title: str, body: str) -> None:
    published = await client.post(
        "/api/v1/templates",
        json={
            "event_type": str(EventType.APPLICATION_APPROVED),
            "channel": "webhook",
            "title": title,
            "body": body,
        },
        headers=tokens.header(Role.ADMIN),
    )
    assert published.status_code == 201, published.text


async def subscribe(client: httpx.AsyncClient, tokens: Tokens, uscc: str, url: str) -> str:
    created = await client.post(
        "/api/v1/webhooks", json={"url": url}, headers=tokens.enterprise(uscc)
    )
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


async def test_a_webhook_replayed_after_its_template_is_fixed_carries_the_notice(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    name = f"replay-{uuid.uuid4().hex[:8]}"
    secret = await subscribe(client, tokens, uscc, outside.webhook_url(name))
    await publish(client, tokens, "准予许可", "{{ no_such_field }}")
    jurisdiction = "310118"
    event = application_event(
        EventType.APPLICATION_APPROVED,
        uscc,
        jurisdiction=jurisdiction,
        application_no="310118-20261128-RPL00001",
    )
    assert (await post_events(client, tokens, [event])).status_code == 200
    await drain(app)
    dead = await webhook_of(session, event["id"])
    assert dead.status == "dead"
    assert "no_such_field" in (dead.last_error or "")
    assert name not in outside.webhooks

    await publish(
        client, tokens, "准予许可：{{ item_name }}", "办件 {{ application_no }} 已准予行政许可"
    )
    staff = tokens.staff(Role.ACCEPTOR, jurisdiction)
    replayed = await client.post(f"/api/v1/deliveries/{dead.id}/replay", headers=staff)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "queued"
    await drain(app)

    [(headers, body)] = outside.webhooks[name]
    assert verify(
        secret,
        timestamp=headers[TIMESTAMP_HEADER.lower()],
        body=body,
        header=headers[SIGNATURE_HEADER.lower()],
    )
    payload = json.loads(body)
    assert payload["title"] == "准予许可：食盐定点批发企业审批"
    assert payload["body"] == "办件 310118-20261128-RPL00001 已准予行政许可"
    assert payload["delivery_id"] == str(dead.id)
    assert payload["notification_id"] == str(dead.notification_id)
    assert payload["critical"] is True
    assert payload["event"] == {
        "id": event["id"],
        "type": event["type"],
        "source": event["source"],
        "subject": event["subject"],
        "time": payload["event"]["time"],
        "data": event["data"],
    }
    assert (await webhook_of(session, event["id"])).status == "delivered"
    assert "webhook" in {p["channel"] for p in await proofs_of(session, event["id"])}


async def test_a_webhook_without_its_notice_is_never_sent_nor_reported_delivered(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    name = f"empty-{uuid.uuid4().hex[:8]}"
    await subscribe(client, tokens, uscc, outside.webhook_url(name))
    jurisdiction = "310119"
    event = application_event(EventType.APPLICATION_APPROVED, uscc, jurisdiction=jurisdiction)
    assert (await post_events(client, tokens, [event])).status_code == 200
    queued = await webhook_of(session, event["id"])
    assert queued.status == "queued"
    # As a row written before fan-out kept the webhook's body: queued without it.
    await session.execute(update(Delivery).where(Delivery.id == queued.id).values(payload=None))
    await session.commit()
    await drain(app)

    assert name not in outside.webhooks
    dead = await webhook_of(session, event["id"])
    assert dead.status == "dead"
    assert dead.attempts == 1
    assert dead.last_error == "回调内容缺失（通知未渲染），未发送"
    assert "webhook" not in {p["channel"] for p in await proofs_of(session, event["id"])}

    # Such a dead letter from a failed render cannot be replayed into an empty notice either.
    await session.execute(update(Delivery).where(Delivery.id == dead.id).values(body=None))
    await session.commit()
    staff = tokens.staff(Role.ACCEPTOR, jurisdiction)
    refused = await client.post(f"/api/v1/deliveries/{dead.id}/replay", headers=staff)
    assert refused.status_code == 409, refused.text
    assert problem(refused)["code"] == "delivery_not_replayable"
    assert problem(refused)["detail"] == "该回调投递未保存事件内容，无法重放"
    await drain(app)
    assert name not in outside.webhooks
    assert (await webhook_of(session, event["id"])).status == "dead"
