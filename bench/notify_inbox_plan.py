"""Notify's inbox queries: does a staff reader's query use the inbox index? (EXPLAIN, not timing)

A staff reader reads its role's messages in its jurisdiction and every one under it
(``notify.rules.Readers.clause``). Fills a fresh, migrated database with ``--rows`` inbox messages
(most to enterprises, some to staff of Shanghai's districts in each role, some to named users),
runs the real repository calls (``InboxRepository.list_for``, ``unread_count``,
``stream_after``) for a district's and the city's acceptors and for an enterprise, captures
the SQL they send and prints its plan:

* PostgreSQL with the server's default collation (``C.UTF-8`` on the test server: not ``C`` to
  PostgreSQL's LIKE optimisation), and a database with an ICU ``zh-Hans-CN`` collation, as a
  deployment on a Chinese locale has: ``EXPLAIN (ANALYZE, BUFFERS)``;
* SQLite: ``EXPLAIN QUERY PLAN``.

It prints, per query, whether the plan reads its index (``ix_inbox_messages_listing``, or
``ix_inbox_messages_stream`` for the stream) or the whole table,
and the plan itself. Row counts and plan shapes do not depend on the machine's load; the times in
the plans do.

    uv run python bench/notify_inbox_plan.py --rows 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from govshared.auth import STAFF_ROLES, Principal, Role
from govshared.migrate import upgrade
from govshared.testing import create_postgres_database, drop_postgres_database, random_uscc
from notify.inbox import recipients_of
from notify.main import ALEMBIC_INI
from notify.models import InboxMessage
from notify.repository import InboxRepository

DISTRICTS = [
    *("310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112"),
    *("310113", "310114", "310115", "310116", "310117", "310118", "310120", "310151"),
]
READERS = {
    "district acceptor (310115)": Principal(
        subject="staff-310115", role=Role.ACCEPTOR, jurisdiction="310115"
    ),
    "city acceptor (310000)": Principal(
        subject="staff-310000", role=Role.ACCEPTOR, jurisdiction="310000"
    ),
    "enterprise": None,  # filled with one of the enterprises below
}


def rows(count: int, enterprises: list[str], now: datetime) -> list[dict[str, Any]]:
    """Inbox messages: 80 % to enterprises, 16 % to staff (each district and the city, each staff
    role), 4 % to named users, created over the last 90 days, 30 % unread."""
    rng = random.Random(7)
    roles = sorted(r.value for r in STAFF_ROLES)
    out = []
    for i in range(count):
        pick = rng.random()
        if pick < 0.80:
            kind, recipient = "enterprise", rng.choice(enterprises)
        elif pick < 0.96:
            area = rng.choice([*DISTRICTS, "310000"])
            kind, recipient = "staff", f"staff:{area}:{rng.choice(roles)}"
        else:
            kind, recipient = "user", f"user:staff-{rng.randrange(500)}"
        out.append(
            {
                "id": uuid.uuid4(),
                "recipient_kind": kind,
                "recipient": recipient,
                "event_id": f"ev-{i}",
                "event_type": "cn.gov.approval.application.accepted.v1",
                "subject": None,
                "title": "申请已受理",
                "body": "您的申请已受理。",
                "critical": False,
                "payload": None,
                "is_read": rng.random() > 0.3,
                "created_at": now - timedelta(seconds=rng.randrange(90 * 86400)),
                "read_at": None,
            }
        )
    return out


async def plans(url: str, count: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    engine = create_async_engine(url)
    postgres = url.startswith("postgresql")
    enterprises = [random_uscc() for _ in range(2000)]
    now = datetime.now(UTC)
    # Stream positions in stamp order, as the migration numbered the messages already there.
    data = sorted(rows(count, enterprises, now), key=lambda row: row["created_at"])
    for position, row in enumerate(data, 1):
        row["stream_seq"] = position
    async with engine.begin() as conn:
        for start in range(0, len(data), 5000):
            await conn.execute(insert(InboxMessage.__table__), data[start : start + 5000])
        if postgres:
            await conn.exec_driver_sql("ANALYZE inbox_messages")
        else:
            await conn.exec_driver_sql("ANALYZE")
    readers = dict(READERS)
    readers["enterprise"] = Principal(
        subject=enterprises[0], role=Role.ENTERPRISE, uscc=enterprises[0]
    )
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    out: dict[str, Any] = {}
    for who, principal in readers.items():
        assert principal is not None
        recipients = recipients_of(principal)
        calls = {
            "list_for (first page)": lambda r, rec=recipients: r.list_for(
                rec, limit=20, after=None
            ),
            "unread_count": lambda r, rec=recipients: r.unread_count(rec),
            "stream_after (stream poll near the head)": lambda r, rec=recipients: r.stream_after(
                rec, max(count - 200, 0), limit=200
            ),
        }
        for name, call in calls.items():
            captured.clear()
            event.listen(engine.sync_engine, "before_cursor_execute", capture)
            try:
                async with AsyncSession(engine) as session:
                    found = await call(InboxRepository(session))
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", capture)
            statement, parameters = next(c for c in captured if "inbox_messages" in c[0])
            explain = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
            async with engine.connect() as conn:
                result = await conn.exec_driver_sql(explain + statement, parameters)
                lines = [" | ".join(str(v) for v in row) for row in result.all()]
            plan = "\n".join(lines)
            out[f"{who}: {name}"] = {
                "rows": found if isinstance(found, int) else len(found),
                "uses_index": (
                    "ix_inbox_messages_stream"
                    if name.startswith("stream")
                    else "ix_inbox_messages_listing"
                )
                in plan,
                "whole_table": ("Seq Scan" in plan)
                if postgres
                else ("SCAN inbox_messages" in plan),
                "plan": lines,
            }
    await engine.dispose()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--only", choices=["postgresql", "postgresql-icu", "sqlite"])
    args = parser.parse_args()
    report: dict[str, Any] = {"rows": args.rows}
    for backend in ("postgresql", "postgresql-icu", "sqlite"):
        if args.only and backend != args.only:
            continue
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as directory:
                url = f"sqlite+aiosqlite:///{Path(directory) / 'inbox.db'}"
                report[backend] = await plans(url, args.rows)
            continue
        url = await create_postgres_database(
            "inbox_plan", icu_locale="zh-Hans-CN" if backend.endswith("icu") else None
        )
        try:
            report[backend] = await plans(url, args.rows)
        finally:
            await drop_postgres_database(url)
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
