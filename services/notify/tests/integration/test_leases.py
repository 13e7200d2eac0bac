"""A slow destination holds up nobody else, and no lease ever makes a notice go out twice.

Every attempt has a deadline well inside the worker's lease; each result is recorded as soon as it
is known; an attempt the lease has no time left for goes back to the queue unsent. The outside
world is real and local: a webhook receiver that drips its answer a byte at a time, an SMTP server
that takes its time over every message, the SMS gateway stand-in.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.events import EventType
from govshared.testing import Tokens, random_uscc
from notify.models import Channel, Delivery, DeliveryStatusChange
from notify.worker import DeliveryWorker

from ..conftest import (
    MailSink,
    Outside,
    application_event,
    free_port,
    make_settings,
    post_events,
    replica,
)


async def enterprise(
    client: httpx.AsyncClient, tokens: Tokens, *, email: str, mobile: str, hook: str
) -> str:
    """An enterprise with an email address, a mobile number and a webhook."""
    uscc = random_uscc()
    headers = tokens.enterprise(uscc)
    saved = await client.put(
        "/api/v1/preferences", json={"email": email, "mobile": mobile}, headers=headers
    )
    assert saved.status_code == 200, saved.text
    created = await client.post("/api/v1/webhooks", json={"url": hook}, headers=headers)
    assert created.status_code == 201, created.text
    return uscc


async def rows_of(session: AsyncSession, event_ids: list[str]) -> list[Delivery]:
    """The event's deliveries as stored now (inbox aside)."""
    session.expire_all()
    rows = (
        await session.scalars(
            select(Delivery).where(Delivery.event_id.in_(event_ids), Delivery.channel != "inbox")
        )
    ).all()
    await session.commit()  # SQLite: a reader's open transaction would hold the write lock
    return list(rows)


class DrippingReceiver:
    """A webhook receiver that starts a 200 answer and then sends one header byte at a time,
    for as long as the connection stays open: every read finishes well within any timeout."""

    def __init__(self) -> None:
        self.requests = 0
        self.got_request = asyncio.Event()
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        self.got_request.set()
        writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        try:
            while not reader.at_eof():
                await asyncio.sleep(0.05)
                writer.write(b"a")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            writer.close()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def dripping() -> AsyncIterator[tuple[DrippingReceiver, str]]:
    receiver = DrippingReceiver()
    url = await receiver.start()
    yield receiver, url
    await receiver.stop()


async def test_a_receiver_that_drips_its_answer_holds_up_nothing_else(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    database_url: str,
    session: AsyncSession,
    smtp: tuple[MailSink, int],
    outside: Outside,
    dripping: tuple[DrippingReceiver, str],
    tmp_path: Path,
) -> None:
    sink, smtp_port = smtp
    receiver, hook = dripping
    address = f"drip-{uuid.uuid4().hex[:8]}@example.com"
    phone = "139" + str(uuid.uuid4().int)[:8]
    uscc = await enterprise(client, tokens, email=address, mobile=phone, hook=hook)
    event = application_event(EventType.APPLICATION_APPROVED, uscc)
    assert (await post_events(client, tokens, [event])).status_code == 200

    settings = make_settings(
        database_url,
        tokens,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        sms_gateway_url=f"{outside.base_url}/sms",
        http_timeout_seconds=0.5,  # a webhook attempt has 1.5 s in all
        delivery_base_backoff_seconds=30.0,
    )
    deadline = settings.attempt_seconds(Channel.WEBHOOK)
    assert deadline == 1.5
    async with replica(app, settings) as worker:
        started = time.monotonic()
        batch = asyncio.create_task(worker.run_once())
        try:
            await asyncio.wait_for(receiver.got_request.wait(), timeout=2)
            # The email and the SMS are sent and recorded while the receiver still drips.
            while time.monotonic() - started < deadline:
                statuses = {r.channel: r.status for r in await rows_of(session, [event["id"]])}
                if statuses["email"] == "delivered" and statuses["sms"] == "sent":
                    break
                await asyncio.sleep(0.02)
            assert statuses == {"email": "delivered", "sms": "sent", "webhook": "sending"}
            assert not batch.done()
            # The receiver is cut off at the deadline: the batch ends, it never drips forever.
            assert await asyncio.wait_for(batch, timeout=deadline + 1.5) == 3
        finally:
            batch.cancel()
    assert time.monotonic() - started < deadline + 1.0
    await asyncio.wait_for(receiver.closed.wait(), timeout=1)

    assert len(sink.to(address)) == 1
    assert len(outside.sms_to(phone)) == 1
    [webhook] = [r for r in await rows_of(session, [event["id"]]) if r.channel == "webhook"]
    # A failed attempt, retried on the usual schedule (half the base backoff at the soonest).
    assert webhook.status == "failed"
    assert webhook.attempts == 1
    assert webhook.last_error == "发送超时：1.5 秒内未完成"
    assert webhook.next_attempt_at >= webhook.updated_at + timedelta(seconds=15)
    assert webhook.claimed_until is None
    assert receiver.requests == 1


class SlowMail(MailSink):
    """An SMTP server under load: MAIL, RCPT and DATA each take ``seconds`` to be answered (each
    within the client's timeout of one command, but a message takes three times as long)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.by_delivery: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.seconds)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.seconds)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.seconds)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._count_lock:
            self.by_delivery[str(message["X-Onestop-Delivery"])] += 1
        return "250 OK"


@pytest.fixture
def slow_smtp() -> Any:
    sink = SlowMail(0.1)  # 0.3 s a message
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


async def test_two_workers_and_a_slow_smtp_server_send_nothing_twice(
    client: httpx.AsyncClient,
    tokens: Tokens,
    app: FastAPI,
    database_url: str,
    session: AsyncSession,
    outside: Outside,
    slow_smtp: tuple[SlowMail, int],
    tmp_path: Path,
) -> None:
    sink, smtp_port = slow_smtp
    run = uuid.uuid4().hex[:8]
    events = []
    for n in range(10):
        uscc = await enterprise(
            client,
            tokens,
            email=f"lease-{run}-{n}@example.com",
            mobile="138" + str(uuid.uuid4().int)[:8],
            hook=outside.webhook_url(f"lease-{run}-{n}"),
        )
        events.append(application_event(EventType.APPLICATION_APPROVED, uscc))
    assert (await post_events(client, tokens, events)).status_code == 200
    event_ids = [e["id"] for e in events]
    assert len(await rows_of(session, event_ids)) == 30

    # Ten emails through one SMTP connection take 3 s, more than the 2.4 s lease: before the fix
    # the other replica took the whole batch back and sent its SMS and webhooks again.
    settings = make_settings(
        database_url,
        tokens,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_connections=1,
        sms_gateway_url=f"{outside.base_url}/sms",
        http_timeout_seconds=0.3,  # an email attempt has 1.2 s in all
        delivery_lease_seconds=2.4,
    )

    async def finished() -> bool:
        async with app.state.sessionmaker() as own:
            rows = await rows_of(own, event_ids)
        return all(r.status in ("delivered", "sent") for r in rows)

    async def keep_working(worker: DeliveryWorker) -> None:
        while not await finished():
            if not await worker.run_once():
                await asyncio.sleep(0.05)

    async with replica(app, settings) as first, replica(app, settings) as second:
        workers = [asyncio.create_task(keep_working(w)) for w in (first, second)]
        _, pending = await asyncio.wait(workers, timeout=6)
        for task in pending:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    rows = await rows_of(session, event_ids)
    ids = {r.channel: set() for r in rows}
    for r in rows:
        ids[r.channel].add(str(r.id))
    sms = Counter(m["out_id"] for m in outside.sms if m["out_id"] in ids["sms"])
    hooks = Counter(
        headers["x-onestop-delivery"]
        for n in range(10)
        for headers, _ in outside.webhooks.get(f"lease-{run}-{n}", [])
    )
    assert sms == Counter({i: 1 for i in ids["sms"]})
    assert hooks == Counter({i: 1 for i in ids["webhook"]})
    assert sink.by_delivery == Counter({i: 1 for i in ids["email"]})
    assert not pending, "every delivery was made within 6 s"
    assert all(r.status in ("delivered", "sent") and r.attempts == 1 for r in rows)
    # Emails the lease left no time for went back to the queue unsent, and were sent later.
    released = (
        await session.scalars(
            select(DeliveryStatusChange.delivery_id).where(
                DeliveryStatusChange.detail.contains("重新排队")
            )
        )
    ).all()
    await session.commit()
    assert released and {str(i) for i in released} <= ids["email"]


def test_a_lease_that_cannot_hold_two_attempts_is_refused(tokens: Tokens, tmp_path: Path) -> None:
    # An email attempt may take 4 × 10 s: a 60 s lease would leave another worker free to take
    # back deliveries still being sent.
    with pytest.raises(ValidationError, match="DELIVERY_LEASE_SECONDS"):
        make_settings(
            "sqlite+aiosqlite:///:memory:",
            tokens,
            tmp_path,
            http_timeout_seconds=10.0,
            delivery_lease_seconds=60.0,
        )
    settings = make_settings(
        "sqlite+aiosqlite:///:memory:", tokens, tmp_path, delivery_lease_seconds=40.0
    )
    assert settings.attempt_seconds(Channel.EMAIL) == 20.0
    assert settings.attempt_seconds(Channel.WEBHOOK) == settings.attempt_seconds(Channel.SMS) == 15
