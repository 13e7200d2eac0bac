"""One enterprise's slow receiver holds up no other enterprise's webhooks: a burst of notices to an
enterprise whose system drips its answers (a group with many licences renewed at once) takes a few
of the worker's webhook lanes, never all of them."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.models import Channel
from notify.webhooks import WEBHOOKS_PER_ENTERPRISE
from notify.worker import LANES

from ..conftest import Outside, application_event, make_settings, post_events, replica
from .test_leases import DrippingReceiver, rows_of


async def test_a_burst_to_a_slow_receiver_leaves_lanes_for_every_other_enterprise(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    database_url: str,
    session: AsyncSession,
    outside: Outside,
    tmp_path: Path,
) -> None:
    receiver = DrippingReceiver()
    slow_hook = await receiver.start()
    try:
        group = random_uscc()
        created = await client.post(
            "/api/v1/webhooks", json={"url": slow_hook}, headers=tokens.enterprise(group)
        )
        assert created.status_code == 201, created.text
        burst = [
            application_event(EventType.APPLICATION_SUBMITTED, group)
            for _ in range(LANES[Channel.WEBHOOK] + 10)
        ]
        assert (await post_events(client, tokens, burst)).status_code == 200

        other = random_uscc()
        name = f"fair-{uuid.uuid4().hex[:8]}"
        created = await client.post(
            "/api/v1/webhooks",
            json={"url": outside.webhook_url(name)},
            headers=tokens.enterprise(other),
        )
        assert created.status_code == 201, created.text
        theirs = application_event(EventType.APPLICATION_ACCEPTED, other)
        assert (await post_events(client, tokens, [theirs])).status_code == 200

        settings = make_settings(
            database_url,
            tokens,
            tmp_path,
            http_timeout_seconds=1.0,  # a webhook attempt has 3 s in all
            delivery_base_backoff_seconds=30.0,
        )
        async with replica(app, settings) as worker:
            started = time.monotonic()
            batch = asyncio.create_task(worker.run_once())
            try:
                while not outside.webhooks.get(name) and time.monotonic() - started < 2.5:  # noqa: ASYNC110 - the stand-in offers no event
                    await asyncio.sleep(0.02)
                # The other enterprise's notice went while the slow receiver's first attempts
                # were still dripping (they end at the 3 s deadline).
                assert outside.webhooks.get(name), "the other enterprise's webhook waited"
                assert not receiver.closed.is_set()
                await receiver.stop()  # the rest of the burst is refused at once
                await asyncio.wait_for(batch, timeout=30)
            finally:
                batch.cancel()
        [delivered] = [r for r in await rows_of(session, [theirs["id"]]) if r.channel == "webhook"]
        assert delivered.status == "delivered"
    finally:
        await receiver.stop()


async def test_an_enterprise_cannot_multiply_its_notices_by_registering_webhooks(
    client: httpx.AsyncClient, tokens: Tokens, app: FastAPI, outside: Outside
) -> None:
    # Each webhook of an enterprise is one more delivery of each of its notices: thousands of
    # them would make every notice thousands of rows and attempts.
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    limit = WEBHOOKS_PER_ENTERPRISE
    for n in range(limit):
        created = await client.post(
            "/api/v1/webhooks", json={"url": outside.webhook_url(f"many-{n}")}, headers=headers
        )
        assert created.status_code == 201, created.text
    refused = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url("one-more")}, headers=headers
    )
    assert refused.status_code == 409, refused.text
    assert problem(refused)["code"] == "webhook_limit_reached"
    assert len((await client.get("/api/v1/webhooks", headers=headers)).json()) == limit
    # Another enterprise is not affected, and one removed makes room again.
    other = await client.post(
        "/api/v1/webhooks",
        json={"url": outside.webhook_url("other")},
        headers=tokens.enterprise(random_uscc()),
    )
    assert other.status_code == 201
    first = (await client.get("/api/v1/webhooks", headers=headers)).json()[0]["id"]
    assert (await client.delete(f"/api/v1/webhooks/{first}", headers=headers)).status_code == 204
    again = await client.post(
        "/api/v1/webhooks", json={"url": outside.webhook_url("one-more")}, headers=headers
    )
    assert again.status_code == 201
