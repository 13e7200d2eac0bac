"""The plumbing's rows go once past their period (delivered outbox rows, consumed events' ids,
idempotency keys), in batches, on both databases; pending events and recent rows stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, func, insert, select

from govshared.db import make_engine, make_sessionmaker
from govshared.idempotency import idempotency_table
from govshared.inbox import inbox_table
from govshared.outbox import outbox_table
from govshared.retention import Retention, standard_expiries
from govshared.testing import BACKENDS, drop_postgres_database, make_database

metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency = idempotency_table(metadata)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    url = await make_database(request.param, prefix="retention", directory=tmp_path)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    yield url
    if request.param == "postgresql":
        await drop_postgres_database(url)


def _outbox_row(n: int, delivered_at: datetime | None) -> dict[str, object]:
    return {
        "id": f"e{n}:notify",
        "event_id": f"e{n}",
        "event_type": "cn.gov.approval.application.submitted.v1",
        "destination": "notify",
        "payload": "{}",
        "created_at": NOW - timedelta(days=60),
        "available_at": NOW - timedelta(days=60),
        "attempts": 1,
        "delivered_at": delivered_at,
    }


async def test_rows_past_their_period_go_and_the_rest_stay(database: str) -> None:
    engine = make_engine(database)
    sessionmaker = make_sessionmaker(engine)
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                insert(outbox),
                [_outbox_row(n, NOW - timedelta(days=8)) for n in range(25)]  # delivered, old
                + [_outbox_row(100, NOW - timedelta(days=6))]  # delivered this week
                + [_outbox_row(101, None)],  # still pending after two months: kept
            )
            await session.execute(
                insert(inbox),
                [
                    {
                        "consumer": "license",
                        "event_id": f"e{n}",
                        "event_type": "t",
                        "received_at": NOW - timedelta(days=days),
                    }
                    for n, days in ((1, 31), (2, 29))
                ],
            )
            await session.execute(
                insert(idempotency),
                [
                    {
                        "owner": "ent:1",
                        "key": f"k{n}",
                        "request_hash": "h",
                        "status_code": 201,
                        "response_body": "{}",
                        "created_at": NOW - timedelta(days=days),
                    }
                    for n, days in ((1, 8), (2, 1))
                ],
            )
        retention = Retention(
            sessionmaker=sessionmaker,
            expiries=standard_expiries(outbox=outbox, inbox=inbox, idempotency=idempotency),
            batch=10,  # three batches for the outbox's 25
        )
        deleted = await retention.run_once(NOW)
        assert deleted == {"outbox_events": 25, "inbox_events": 1, "idempotency_keys": 1}
        async with sessionmaker() as session:
            assert set(await session.scalars(select(outbox.c.id))) == {"e100:notify", "e101:notify"}
            assert list(await session.scalars(select(inbox.c.event_id))) == ["e2"]
            assert list(await session.scalars(select(idempotency.c.key))) == ["k2"]
        assert await retention.run_once(NOW) == {
            "outbox_events": 0,
            "inbox_events": 0,
            "idempotency_keys": 0,
        }
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(outbox)) == 2
    finally:
        await engine.dispose()
