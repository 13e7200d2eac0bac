"""Issue 15, identity (notify): keys bound to roles, and jurisdiction containment: city-level staff
see what went to their districts (inbox and dead letters), which equality used to hide."""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role, mint_token
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.models import Delivery

from ..conftest import Outside, application_event, drain, post_events


async def test_only_the_services_key_posts_events(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    forged = mint_token(
        Path(tokens.private_key_file).read_text(), role=Role.SERVICE, subject="service:approval"
    )
    event = application_event(EventType.APPLICATION_SUBMITTED, random_uscc())
    response = await client.post(
        "/api/v1/events",
        json=[event],
        headers={
            "Content-Type": "application/cloudevents-batch+json",
            "Authorization": f"Bearer {forged}",
        },
    )
    assert response.status_code == 401
    assert problem(response)["code"] == "unauthenticated"
    # A genuine service token speaks for its own service only: license cannot post approval's.
    impostor = await client.post(
        "/api/v1/events",
        json=[event],
        headers={"Content-Type": "application/cloudevents-batch+json", **tokens.service("license")},
    )
    assert impostor.status_code == 403
    assert problem(impostor)["code"] == "event_producer_mismatch"
    genuine = await post_events(client, tokens, [event])
    assert genuine.status_code == 200
    assert genuine.json()["results"][0]["outcome"] == "accepted"  # nothing recorded before


async def test_a_non_string_jurisdiction_is_401(client: httpx.AsyncClient, tokens: Tokens) -> None:
    claims = {"sub": "s", "role": "acceptor", "jurisdiction": 310000, "exp": int(time.time()) + 60}
    token = jwt.encode(claims, Path(tokens.private_key_file).read_text(), algorithm="RS256")
    response = await client.get("/api/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert problem(response)["code"] == "unauthenticated"


async def test_city_staff_read_their_districts_inbox_notices(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    district = f"3101{secrets.choice(range(20, 100))}"
    event = application_event(EventType.APPLICATION_SUBMITTED, random_uscc(), jurisdiction=district)
    await post_events(client, tokens, [event])
    own = (await client.get("/api/v1/inbox", headers=tokens.staff(Role.ACCEPTOR, district))).json()
    (message,) = [m for m in own["items"] if m["title"].startswith("新申请待受理")]

    city = tokens.staff(Role.ACCEPTOR, "310000")
    listed = await client.get("/api/v1/inbox", params={"limit": 100}, headers=city)
    assert message["id"] in [m["id"] for m in listed.json()["items"]]
    detail = await client.get(f"/api/v1/inbox/{message['id']}", headers=city)
    assert detail.status_code == 200
    assert (await client.get("/api/v1/inbox/unread-count", headers=city)).json()["unread"] >= 1

    # Another district, another role, another province: not theirs.
    for other in (
        tokens.staff(Role.ACCEPTOR, "310118" if district != "310118" else "310119"),
        tokens.staff(Role.REVIEWER, "310000"),
        tokens.staff(Role.ACCEPTOR, "320000"),
    ):
        hidden = await client.get(f"/api/v1/inbox/{message['id']}", headers=other)
        assert hidden.status_code == 404


async def test_city_staff_see_and_replay_their_districts_dead_letters(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    session: AsyncSession,
    outside: Outside,
) -> None:
    uscc = random_uscc()
    name = f"down-{uuid.uuid4().hex[:8]}"
    outside.webhook_status[name] = 503
    created = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url(name)}, headers=tokens.enterprise(uscc)
    )
    assert created.status_code == 201, created.text
    event = application_event(EventType.APPLICATION_SUBMITTED, uscc, jurisdiction="310115")
    await post_events(client, tokens, [event])
    await drain(app)
    session.expire_all()
    webhook = (
        await session.scalars(
            select(Delivery).where(Delivery.event_id == event["id"], Delivery.channel == "webhook")
        )
    ).one()
    await session.commit()
    assert webhook.status == "dead"

    city = tokens.staff(Role.ACCEPTOR, "310000")
    dead = await client.get(
        "/api/v1/deliveries", params={"status": "dead", "limit": 100}, headers=city
    )
    assert str(webhook.id) in [d["id"] for d in dead.json()["items"]]
    assert (await client.get(f"/api/v1/deliveries/{webhook.id}", headers=city)).status_code == 200
    elsewhere = tokens.staff(Role.ACCEPTOR, "310118")
    hidden = await client.get(
        "/api/v1/deliveries", params={"status": "dead", "limit": 100}, headers=elsewhere
    )
    assert str(webhook.id) not in [d["id"] for d in hidden.json()["items"]]
    assert (
        await client.get(f"/api/v1/deliveries/{webhook.id}", headers=elsewhere)
    ).status_code == 404
