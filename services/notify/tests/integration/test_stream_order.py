"""The inbox stream's positions follow commit order, not the order of the messages' stamps.

A transaction numbers its messages from the one-row counter as its last write and holds the row's
lock until it commits: another intake waits there, so no reader sees a position before an earlier
one has committed, and a stream that read past a position can never be passed by a message that
commits later. Those two are PostgreSQL's: SQLite takes its one write lock at ``BEGIN IMMEDIATE``, so two
transactions never overlap there to begin with (the stream tests cover both databases).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from govshared.events import EventType
from govshared.testing import Tokens, random_uscc
from notify.context import context_of
from notify.inbox import InboxSignal, inbox_updates
from notify.models import InboxMessage, InboxStreamCounter
from notify.repository import InboxRepository
from notify.rules import Readers

from ..conftest import application_event, make_settings, post_events, running_app


def message(recipient: str, at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "recipient_kind": "enterprise",
        "recipient": recipient,
        "event_id": f"ev-{uuid.uuid4()}",
        "event_type": "cn.gov.approval.application.accepted.v1",
        "subject": None,
        "title": "受理通知",
        "body": "您的申请已受理。",
        "critical": False,
        "payload": None,
        "is_read": False,
        "created_at": at,
        "read_at": None,
    }


# SQLite takes its one write lock at BEGIN IMMEDIATE: two writing transactions never overlap there.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_later_intake_waits_for_the_earlier_ones_commit(app: FastAPI) -> None:
    sessionmaker = app.state.sessionmaker
    uscc = random_uscc()
    readers = Readers((uscc,))
    slow_row, fast_row = message(uscc, datetime.now(UTC)), message(uscc, datetime.now(UTC))

    async with sessionmaker() as slow, sessionmaker() as fast, sessionmaker() as reader:
        await InboxRepository(slow).insert_many([slow_row])  # numbered, not committed yet

        async def fast_intake() -> None:
            await InboxRepository(fast).insert_many([fast_row])
            await fast.commit()

        task = asyncio.create_task(fast_intake())
        await asyncio.sleep(0.3)
        assert not task.done()  # waiting for the counter row the slow intake holds
        assert await InboxRepository(reader).stream_after(readers, 0, limit=10) == []
        await reader.rollback()
        await slow.commit()
        await asyncio.wait_for(task, timeout=10)
        streamed = [
            (m.id, m.stream_seq)
            for m in await InboxRepository(reader).stream_after(readers, 0, limit=10)
        ]
        head = await reader.scalar(select(InboxStreamCounter.value))
        await reader.rollback()
    assert [ident for ident, _ in streamed] == [slow_row["id"], fast_row["id"]]
    assert streamed[1][1] == streamed[0][1] + 1 == head


async def test_a_rolled_back_intake_leaves_no_gap(app: FastAPI) -> None:
    """The counter's increment rolls back with the messages: the next intake takes the same
    positions (a gap would be harmless to the stream; its absence shows the counter and the
    messages are one unit of work)."""
    sessionmaker = app.state.sessionmaker
    uscc = random_uscc()
    async with sessionmaker() as session:
        await InboxRepository(session).insert_many([message(uscc, datetime.now(UTC))])
        await session.rollback()
        rows = [message(uscc, datetime.now(UTC)) for _ in range(3)]
        await InboxRepository(session).insert_many(rows)
        await session.commit()
        positions = (
            await session.scalars(
                select(InboxMessage.stream_seq)
                .where(InboxMessage.recipient == uscc)
                .order_by(InboxMessage.stream_seq)
            )
        ).all()
        head = await session.scalar(select(InboxStreamCounter.value))
    assert list(positions) == [head - 2, head - 1, head]
    assert positions[0] == 1  # the suite's tables start empty: the first positions are 1, 2, 3


# SQLite is one embedded process: no old version ever serves beside the new one.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_old_replicas_insert_is_numbered_during_the_roll_out(app: FastAPI) -> None:
    """While the new version rolls out, the old one's pods insert messages naming no position:
    PostgreSQL's trigger numbers them from the same counter, so the stream sends them in order."""
    sessionmaker = app.state.sessionmaker
    uscc = random_uscc()
    readers = Readers((uscc,))
    first = message(uscc, datetime.now(UTC))
    async with sessionmaker() as session:
        await InboxRepository(session).insert_many([first])
        await session.commit()
        old_row = message(uscc, datetime.now(UTC))
        await session.execute(insert(InboxMessage.__table__), [old_row])  # as the old code did
        await session.commit()
        streamed = [
            (m.id, m.stream_seq)
            for m in await InboxRepository(session).stream_after(readers, 0, limit=10)
        ]
        head = await session.scalar(select(InboxStreamCounter.value))
        await session.rollback()
    assert [ident for ident, _ in streamed] == [first["id"], old_row["id"]]
    assert streamed[1][1] == streamed[0][1] + 1 == head


async def test_a_commit_while_the_stream_reads_wakes_it_at_once(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that commits while the stream is reading (after the read's snapshot, before the
    stream waits) wakes the wait at once, not after the poll interval."""
    sessionmaker = app.state.sessionmaker
    uscc = random_uscc()
    signal = InboxSignal()
    late = message(uscc, datetime.now(UTC))
    original = InboxRepository.stream_after
    reads = 0

    async def read_then_commit(self: InboxRepository, *args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 1:
            # The first read's snapshot is taken before another intake commits the message; the
            # intake's commit then wakes the streams, before the stream gets to wait.
            signal.notify()
            return []
        return await original(self, *args, **kwargs)

    async def connected() -> bool:
        return False

    async with sessionmaker() as intake:
        await InboxRepository(intake).insert_many([late])
        await intake.commit()
    monkeypatch.setattr(InboxRepository, "stream_after", read_then_commit)
    updates = inbox_updates(
        sessionmaker,
        signal,
        recipients=Readers((uscc,)),
        since=None,
        poll_seconds=30,
        max_seconds=20,
        is_disconnected=connected,
    )
    try:
        first = await asyncio.wait_for(anext(updates), timeout=5)  # not the 30 s poll
    finally:
        await updates.aclose()
    assert first.id == late["id"]


# On SQLite notify is one process: its own commits wake its streams directly.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_message_taken_in_by_one_replica_wakes_the_streams_of_another(
    database_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    """Two web replicas (as the Kubernetes base runs): the relay's POST lands on one, the
    enterprise's stream is held by the other, whose poll is 30 s. The intake's NOTIFY wakes it."""
    settings = make_settings(database_url, tokens, tmp_path, sse_poll_seconds=30.0)
    uscc = random_uscc()
    async with running_app(settings) as intake, running_app(settings) as streaming:
        listener = streaming.state.inbox_listener
        await asyncio.wait_for(listener.connected.wait(), timeout=10)
        woken = context_of(streaming).inbox_signal.mark()
        transport = httpx.ASGITransport(app=intake)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify.test") as client:
            posted = await post_events(
                client, tokens, [application_event(EventType.APPLICATION_ACCEPTED, uscc)]
            )
        assert posted.status_code == 200, posted.text
        await asyncio.wait_for(woken.wait(), timeout=5)  # not the 30 s poll
