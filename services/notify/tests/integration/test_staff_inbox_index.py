"""A staff reader's inbox (its role's messages in its jurisdiction and every one under it) is read
through the inbox index by recipient, and holds exactly the messages it reads, on both databases.

The prefix test used to be ``recipient LIKE 'staff:31%:acceptor'`` alone, which no btree serves on
PostgreSQL outside the C collation (the test server's C.UTF-8 included) nor on SQLite: every staff
inbox page, count and stream poll read the whole table (``bench/notify_inbox_plan.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from govshared.auth import Principal, Role
from govshared.sql import dialect_name
from notify.inbox import recipients_of
from notify.repository import InboxRepository

# Keys on either side of each reader's range: a code ending in 9 (310109, 3199xx) makes the
# range's upper end carry; townships and villages sort inside their district's range.
KEYS = [
    *(f"staff:{code}:acceptor" for code in ("310000", "310100", "310101", "310109", "310110")),
    *(f"staff:{code}:acceptor" for code in ("310115", "310115001", "310115001001", "310116")),
    *(f"staff:{code}:acceptor" for code in ("319900", "319901", "320000", "320100", "300000")),
    *("staff:310115:reviewer", "staff:310115001:approver", "staff:*:acceptor"),
    *("user:acceptor-1", "user:staff:310115:acceptor", "department:SHSJXW", "91310000MA1FL0000X"),
]
READERS = [
    Principal(subject="acceptor-1", role=Role.ACCEPTOR, jurisdiction=code)
    for code in ("310000", "310100", "310109", "310115", "310115001", "319900", "320000")
] + [Principal(subject="reviewer-1", role=Role.REVIEWER, jurisdiction="310000")]


def message(recipient: str, at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "recipient_kind": "staff" if recipient.startswith("staff:") else "user",
        "recipient": recipient,
        "event_id": f"ev-{uuid.uuid4()}",
        "event_type": "cn.gov.approval.application.submitted.v1",
        "subject": None,
        "title": "新的待办",
        "body": "有新的申请等待受理。",
        "critical": False,
        "payload": None,
        "is_read": False,
        "created_at": at,
        "read_at": None,
    }


async def test_a_staff_reader_gets_exactly_the_messages_it_reads(session: AsyncSession) -> None:
    now = datetime.now(UTC)
    repository = InboxRepository(session)
    await repository.insert_many([message(key, now) for key in KEYS])
    await session.commit()
    for principal in READERS:
        readers = recipients_of(principal)
        expected = sorted(key for key in KEYS if readers.reads(key))
        listed = await repository.list_for(readers, limit=100, after=None)
        assert sorted(m.recipient for m in listed) == expected, principal.jurisdiction
        assert await repository.unread_count(readers) == len(expected)
        polled = await repository.stream_after(readers, 0, limit=100)
        assert sorted(m.recipient for m in polled) == expected
        assert [m.stream_seq for m in polled] == sorted(m.stream_seq for m in polled)
    await session.commit()


Call = Callable[[InboxRepository], Awaitable[object]]


ENTERPRISE = "91310000MA1FL0000X"


@pytest.mark.parametrize(
    "jurisdiction",
    ["310000", "310115", "310115001", None],
    ids=["city", "district", "township", "enterprise"],
)
async def test_a_staff_readers_queries_enter_the_inbox_index_by_recipient(
    session: AsyncSession, jurisdiction: str | None
) -> None:
    """Every inbox query enters an index by recipient; the stream's poll enters
    ``ix_inbox_messages_stream`` by recipient and position (an enterprise's inbox too)."""
    principal = (
        Principal(subject=ENTERPRISE, role=Role.ENTERPRISE, uscc=ENTERPRISE)
        if jurisdiction is None
        else Principal(subject="s", role=Role.ACCEPTOR, jurisdiction=jurisdiction)
    )
    readers = recipients_of(principal)
    calls: dict[str, Call] = {
        "page": lambda r: r.list_for(readers, limit=20, after=None),
        "count": lambda r: r.unread_count(readers),
        "stream poll": lambda r: r.stream_after(readers, 12345, limit=200),
    }
    engine = cast(AsyncEngine, session.bind).sync_engine
    postgres = dialect_name(session) == "postgresql"
    for name, call in calls.items():
        captured: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "inbox_messages" in statement:
                captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        try:
            await call(InboxRepository(session))
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        [(statement, parameters)] = captured
        connection = await session.connection()
        if postgres:
            # An empty table is cheapest to read whole: ask for the plan as if it were not.
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = (await connection.exec_driver_sql("EXPLAIN " + statement, parameters)).all()
            lines = [str(row[0]) for row in plan]
            conditions = [line for line in lines if "Index Cond:" in line]
            assert not any("Seq Scan" in line for line in lines), (name, lines)
            assert conditions, (name, lines)
            assert all("recipient" in line for line in conditions), (name, lines)
            if name == "stream poll":
                # Entered by recipient and position (the exact keys of a staff reader may be
                # read through the listing index instead: the plan of an empty table).
                assert any("stream_seq" in line for line in conditions), (name, lines)
                assert any("ix_inbox_messages_stream" in line for line in lines), (name, lines)
        else:
            plan = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            details = [str(row[-1]) for row in plan.all()]
            scans = [d for d in details if d.startswith(("SCAN", "SEARCH"))]
            assert scans, (name, details)
            assert all(d.startswith("SEARCH") and "recipient" in d for d in scans), (name, details)
            if name == "stream poll":
                assert all("ix_inbox_messages_stream" in d for d in scans), (name, details)
        await session.rollback()
