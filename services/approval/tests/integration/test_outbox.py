"""The outbox commits or rolls back with the business row; the relay retries until delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from approval.db import outbox_events
from approval.models import Application
from approval.schemas import ApplicationCreate
from approval.service import ApplicationService
from govshared.auth import Principal, Role
from govshared.outbox import Destination, OutboxRelay
from govshared.testing import random_uscc


def _principal() -> Principal:
    uscc = random_uscc()
    return Principal(subject=f"ent:{uscc}", role=Role.ENTERPRISE, uscc=uscc)


def _service(app: FastAPI, session: object) -> ApplicationService:
    return ApplicationService(
        session,  # type: ignore[arg-type]
        outbox=app.state.outbox,
        license_client=app.state.license_client,
    )


BODY = ApplicationCreate(
    item_code="JXW-XK-003", applicant_name="上海无线示范有限公司", form={"station_type": "固定台站"}
)


async def _stored(app: FastAPI, uscc: str) -> tuple[int, int]:
    async with app.state.sessionmaker() as s:
        apps = (
            await s.scalars(select(Application.id).where(Application.applicant_uscc == uscc))
        ).all()
        events = (
            await s.execute(
                select(outbox_events.c.id).where(outbox_events.c.payload.contains(uscc))
            )
        ).all()
    return len(apps), len(events)


async def test_outbox_row_commits_and_rolls_back_with_the_application(app: FastAPI) -> None:
    committed, rolled_back = _principal(), _principal()
    async with app.state.sessionmaker() as session:
        await _service(app, session).submit(principal=committed, body=BODY, idempotency_key=None)
        await session.commit()
    async with app.state.sessionmaker() as session:
        await _service(app, session).submit(principal=rolled_back, body=BODY, idempotency_key=None)
        await session.rollback()
    assert await _stored(app, committed.uscc or "") == (1, 1)
    assert await _stored(app, rolled_back.uscc or "") == (0, 0)


async def _pending_ids(app: FastAPI) -> set[str]:
    async with app.state.sessionmaker() as s:
        rows = await s.execute(
            select(outbox_events.c.id).where(outbox_events.c.delivered_at.is_(None))
        )
        return {r.id for r in rows}


async def test_relay_retries_with_backoff_then_delivers_once(app: FastAPI) -> None:
    # Start from an empty queue so that this test sees only its own events.
    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(delete(outbox_events))
    async with app.state.sessionmaker() as session:
        for _ in range(3):
            await _service(app, session).submit(
                principal=_principal(), body=BODY, idempotency_key=None
            )
        await session.commit()

    received: list[dict[str, object]] = []
    calls = {"n": 0}

    def notify(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(503, text="down for maintenance")
        assert request.headers["content-type"] == "application/cloudevents-batch+json"
        assert request.headers["authorization"].startswith("Bearer ")
        received.extend(json.loads(request.content))
        return httpx.Response(200, json={"accepted": len(received)})

    async with httpx.AsyncClient(transport=httpx.MockTransport(notify)) as http:
        relay = OutboxRelay(
            sessionmaker=app.state.sessionmaker,
            table=outbox_events,
            destinations={"notify": Destination("http://notify.test/api/v1/events", lambda: "t")},
            http=http,
            base_backoff=0.5,
        )
        assert await relay.run_once() == 0  # first attempt fails
        async with app.state.sessionmaker() as s:
            rows = (await s.execute(select(outbox_events))).all()
        assert len(rows) == 3
        for row in rows:
            assert row.attempts == 1 and row.delivered_at is None
            assert "HTTP 503" in row.last_error
            assert row.available_at > datetime.now(UTC)
            assert row.claimed_until is None
        assert await relay.run_once() == 0  # not due yet: nothing is sent
        async with app.state.sessionmaker() as s, s.begin():
            await s.execute(
                update(outbox_events).values(available_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert await relay.run_once() == 3
        assert await relay.run_once() == 0
    assert len(received) == 3
    assert len({e["id"] for e in received}) == 3
    assert await _pending_ids(app) == set()


def test_backoff_grows_and_is_capped() -> None:
    relay = OutboxRelay(
        sessionmaker=None,  # type: ignore[arg-type]
        table=outbox_events,
        destinations={},
        http=None,  # type: ignore[arg-type]
        base_backoff=1.0,
        max_backoff=60.0,
    )
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (5, 16.0), (20, 60.0)]:
        for _ in range(20):
            assert ceiling / 2 <= relay.backoff(attempt) <= ceiling


async def test_a_claimed_row_is_not_claimed_twice(app: FastAPI) -> None:
    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(delete(outbox_events))
    async with app.state.sessionmaker() as session:
        await _service(app, session).submit(principal=_principal(), body=BODY, idempotency_key=None)
        await session.commit()
    relay = OutboxRelay(
        sessionmaker=app.state.sessionmaker,
        table=outbox_events,
        destinations={},
        http=None,  # type: ignore[arg-type]
    )
    first = await relay._claim()
    second = await relay._claim()
    assert len(first) == 1 and second == []
    # Releasing (as on SIGTERM) makes the row available again.
    relay._claimed.update(r[0] for r in first)
    await relay.stop()
    assert len(await relay._claim()) == 1


async def test_running_relay_reports_its_backlog(app: FastAPI) -> None:
    import asyncio

    from prometheus_client import REGISTRY

    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(delete(outbox_events))
    async with app.state.sessionmaker() as session:
        for _ in range(2):
            await _service(app, session).submit(
                principal=_principal(), body=BODY, idempotency_key=None
            )
        await session.commit()

    def down(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        relay = OutboxRelay(
            sessionmaker=app.state.sessionmaker,
            table=outbox_events,
            destinations={"notify": Destination("http://notify.test/api/v1/events")},
            http=http,
            poll_interval=0.05,
        )
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.3)
        await relay.stop()
        await task
    assert REGISTRY.get_sample_value("outbox_pending") == 2
