"""Wake on commit across processes (PostgreSQL LISTEN/NOTIFY), the poll kept as the fallback.

The writer and the relay each have their own engine and connections here, as a web process and a
worker process do: what passes between them goes through PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from govshared.db import make_engine, make_sessionmaker, new_metadata
from govshared.events import make_event
from govshared.outbox import Destination, OutboxRelay, OutboxWriter, outbox_table
from govshared.testing import admin_url, create_postgres_database, drop_postgres_database
from govshared.wake import (
    OUTBOX_CHANNEL,
    CommitSignal,
    WakeListener,
    commit_signal,
    listen_dsn,
    wake_listener,
)

metadata = new_metadata()
outbox = outbox_table(metadata)
EVENTS_URL = "http://notify.test/api/v1/events"
# Far beyond how long any assertion below waits: what arrives in time was woken, not polled.
LONG_POLL = 120.0


class Note(BaseModel):
    text: str


@dataclass
class Received:
    ids: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.ids += [event["id"] for event in json.loads(request.content)]
        self.arrived.set()
        return httpx.Response(202)


@pytest.fixture
async def database() -> AsyncIterator[str]:
    url = await create_postgres_database("wake_test")
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    yield url
    await drop_postgres_database(url)


@dataclass
class Writer:
    """A web process's side: its own engine, the outbox writer, the commit signal."""

    engine: AsyncEngine
    outbox: OutboxWriter
    signal: CommitSignal

    async def commit_event(self) -> str:
        event = make_event(type="cn.test.note.v1", source="test", subject=None, data=Note(text="x"))
        async with make_sessionmaker(self.engine)() as session, session.begin():
            await self.outbox.add(session, event)
        return event.id


@pytest.fixture
async def writer(database: str) -> AsyncIterator[Writer]:
    engine = make_engine(database)
    signal = commit_signal(database)
    assert signal is not None
    writer = OutboxWriter(outbox, {"notify": ["cn.test.*"]})
    writer.on_commit(signal.hook(OUTBOX_CHANNEL))
    yield Writer(engine, writer, signal)
    await signal.close()
    await engine.dispose()


@dataclass
class Worker:
    """A worker process's side: its own engine, the relay, the listener."""

    relay: OutboxRelay
    listener: WakeListener
    received: Received


@pytest.fixture
async def start_worker(database: str) -> AsyncIterator[Callable[..., Worker]]:
    started: list[tuple[Worker, AsyncEngine, httpx.AsyncClient, asyncio.Task[None]]] = []

    def start(*, poll: float, reconnect_base: float = 0.2) -> Worker:
        engine = make_engine(database, pool_size=2)
        received = Received()
        http = httpx.AsyncClient(transport=httpx.MockTransport(received.handler))
        relay = OutboxRelay(
            sessionmaker=make_sessionmaker(engine),
            table=outbox,
            destinations={"notify": Destination(EVENTS_URL)},
            http=http,
            poll_interval=poll,
        )
        dsn = listen_dsn(database)
        assert dsn is not None
        listener = WakeListener(
            dsn, reconnect_base_seconds=reconnect_base, reconnect_max_seconds=reconnect_base
        )
        listener.subscribe(OUTBOX_CHANNEL, relay.wake)
        listener.start()
        worker = Worker(relay, listener, received)
        started.append((worker, engine, http, asyncio.create_task(relay.run())))
        return worker

    yield start
    for worker, engine, http, task in started:
        await worker.listener.stop()
        await worker.relay.stop()
        await task
        await http.aclose()
        await engine.dispose()


async def delivered(worker: Worker, event_id: str, *, within: float) -> float:
    """Seconds until the relay posted ``event_id`` (fails past ``within``)."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while event_id not in worker.received.ids:
            worker.received.arrived.clear()
            await worker.received.arrived.wait()
    return time.monotonic() - started


async def terminate(pid: int | None) -> None:
    """End a server process as a failover or an administrator would."""
    assert pid is not None
    dsn = listen_dsn(admin_url())
    assert dsn is not None
    admin = await asyncpg.connect(dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_commit_wakes_the_relay_of_another_process_long_before_its_poll(
    writer: Writer, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker(poll=LONG_POLL)
    await asyncio.wait_for(worker.listener.connected.wait(), timeout=10)
    await asyncio.sleep(0.2)  # the relay has looked once and now waits for its poll
    for _ in range(3):
        event_id = await writer.commit_event()
        assert await delivered(worker, event_id, within=10) < LONG_POLL
    # Commits close together share NOTIFYs (at most one per commit).
    assert 1 <= writer.signal.sent <= 3


async def test_a_burst_of_commits_sends_one_notify_per_interval_and_none_is_lost(
    database: str,
) -> None:
    """Under load the signal bounds the NOTIFYs a process sends, not the wake-ups it owes: the
    burst's last commit, made while the bound holds its NOTIFY back, still reaches the listener,
    and the whole burst takes far fewer NOTIFYs than commits."""
    dsn = listen_dsn(database)
    assert dsn is not None
    last_heard = asyncio.Event()
    listener = WakeListener(dsn)
    listener.subscribe("burst_b", last_heard.set)
    listener.start()
    interval = 0.3
    signal = CommitSignal(dsn, min_interval=interval)
    signal.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), timeout=10)
        await asyncio.sleep(0.1)
        last_heard.clear()  # the wake-up every waker gets once the listener connects
        started = time.monotonic()
        commits = 0
        while time.monotonic() - started < 3 * interval:
            signal.hook("burst_a")()
            commits += 1
            await asyncio.sleep(0.005)
        signal.hook("burst_b")()  # the last commit of the burst, on the other channel
        await asyncio.wait_for(last_heard.wait(), timeout=10)
        elapsed = time.monotonic() - started
        assert commits >= 20
        # At most one NOTIFY a full interval, and the first at once (the burst began after a
        # quiet spell): never more than the burst's length allows, however many commits. (The
        # count may not include the last NOTIFY yet: the listener can hear it before the sender
        # has read the server's answer.)
        assert 1 <= signal.sent <= int(elapsed / interval) + 1
    finally:
        await signal.close()
        await listener.stop()


async def test_a_commit_after_a_quiet_spell_is_signalled_at_once(database: str) -> None:
    """The bound costs a lone commit nothing: its NOTIFY leaves without waiting out the interval."""
    dsn = listen_dsn(database)
    assert dsn is not None
    heard = asyncio.Event()
    listener = WakeListener(dsn)
    listener.subscribe("quiet", heard.set)
    listener.start()
    signal = CommitSignal(dsn, min_interval=LONG_POLL)
    signal.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), timeout=10)
        await asyncio.sleep(0.1)
        heard.clear()
        signal.hook("quiet")()
        # Heard within seconds, where waiting out the interval would take LONG_POLL.
        await asyncio.wait_for(heard.wait(), timeout=10)
    finally:
        await signal.close()
        await listener.stop()


async def test_a_lost_listening_connection_leaves_the_work_to_the_poll(
    writer: Writer, start_worker: Callable[..., Worker]
) -> None:
    # A listener that, once its connection is lost, stays away far longer than the test.
    worker = start_worker(poll=0.2, reconnect_base=LONG_POLL)
    await asyncio.wait_for(worker.listener.connected.wait(), timeout=10)
    await terminate(worker.listener.backend_pid)
    await asyncio.wait_for(worker.listener.disconnected.wait(), timeout=15)
    event_id = await writer.commit_event()
    await delivered(worker, event_id, within=10)
    assert not worker.listener.connected.is_set()  # the poll delivered it


async def test_the_listener_connects_again_and_wakes_the_relay(
    writer: Writer, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker(poll=LONG_POLL)
    await asyncio.wait_for(worker.listener.connected.wait(), timeout=10)
    first = worker.listener.backend_pid
    await terminate(first)
    # What is committed while it is away is delivered once it is back (it wakes everyone then).
    while_away = await writer.commit_event()
    await delivered(worker, while_away, within=20)
    await asyncio.wait_for(worker.listener.connected.wait(), timeout=10)
    assert worker.listener.backend_pid != first
    await asyncio.sleep(0.2)
    event_id = await writer.commit_event()
    await delivered(worker, event_id, within=10)


async def test_sqlite_has_no_cross_process_wake(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    assert commit_signal(url) is None
    assert wake_listener(url, {OUTBOX_CHANNEL: [lambda: None]}) is None
