"""The outbox commits or rolls back with the business row; the relay retries until delivered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, insert, select

from approval.context import context_of
from approval.db import outbox_events
from approval.models import Application
from approval.schemas import ApplicationCreate
from approval.submission import SubmissionService
from govshared.auth import Principal, Role
from govshared.outbox import SUSPECT_AFTER, Destination, OutboxRelay
from govshared.testing import random_uscc


def _principal() -> Principal:
    uscc = random_uscc()
    return Principal(subject=f"ent:{uscc}", role=Role.ENTERPRISE, uscc=uscc)


def _service(app: FastAPI, session: object) -> SubmissionService:
    return SubmissionService(
        session,  # type: ignore[arg-type]
        outbox=context_of(app).outbox,
        license_client=context_of(app).license_client,
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
    # One event row for each destination of the submission: notify and license.
    assert await _stored(app, committed.uscc or "") == (1, 2)
    assert await _stored(app, rolled_back.uscc or "") == (0, 0)


async def test_license_is_told_of_an_application_from_its_submission_to_its_end(
    app: FastAPI,
) -> None:
    """A renewal filed here protects the licence from the day it arrives (Art. 50): license must
    hear of the submission and of how it ended, not only of an approval."""
    principal = _principal()
    async with app.state.sessionmaker() as session:
        await _service(app, session).submit(principal=principal, body=BODY, idempotency_key=None)
        await session.commit()
    async with app.state.sessionmaker() as s:
        rows = (
            await s.execute(
                select(outbox_events.c.event_type, outbox_events.c.destination).where(
                    outbox_events.c.payload.contains(principal.uscc or "")
                )
            )
        ).all()
    assert ("cn.gov.approval.application.submitted.v1", "license") in set(rows)
    routes = context_of(app).outbox
    for state in ("withdrawn", "denied", "rejected", "approved"):
        assert "license" in routes.destinations(f"cn.gov.approval.application.{state}.v1")


async def _pending_ids(app: FastAPI) -> set[str]:
    async with app.state.sessionmaker() as s:
        rows = await s.execute(
            select(outbox_events.c.id).where(outbox_events.c.delivered_at.is_(None))
        )
        return {r.id for r in rows}


async def _queue(app: FastAPI, count: int, destinations: list[str]) -> list[str]:
    """``count`` events for each destination, one second apart (oldest first); their ids."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    ids = []
    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(delete(outbox_events))
        for n in range(count):
            event_id = f"evt-{n:03d}"
            ids.append(event_id)
            for destination in destinations:
                at = start + timedelta(seconds=n)
                await s.execute(
                    insert(outbox_events).values(
                        id=f"{event_id}:{destination}",
                        event_id=event_id,
                        event_type="cn.gov.approval.application.submitted.v1",
                        destination=destination,
                        payload=json.dumps({"id": event_id}),
                        created_at=at,
                        available_at=at,
                        attempts=0,
                    )
                )
    return ids


def _relay(app: FastAPI, http: httpx.AsyncClient, *names: str, **tuning: float) -> OutboxRelay:
    return OutboxRelay(
        sessionmaker=app.state.sessionmaker,
        table=outbox_events,
        destinations={n: Destination(f"http://{n}.test/api/v1/events", lambda: "t") for n in names},
        http=http,
        **{"base_backoff": 0.5, **tuning},
    )


async def test_a_failing_destination_is_paused_then_drained_in_order(app: FastAPI) -> None:
    """Down: one failed post, then nothing until the pause is over; one probe; once it answers,
    the whole backlog at once, oldest first, each event once."""
    ids = await _queue(app, 5, ["notify"])
    up = {"now": False}
    posts: list[list[str]] = []

    def notify(request: httpx.Request) -> httpx.Response:
        if not up["now"]:
            posts.append([])
            return httpx.Response(503, text="down for maintenance")
        assert request.headers["content-type"] == "application/cloudevents-batch+json"
        assert request.headers["authorization"] == "Bearer t"
        posts.append([e["id"] for e in json.loads(request.content)])
        return httpx.Response(200, json={"accepted": len(posts[-1])})

    async with httpx.AsyncClient(transport=httpx.MockTransport(notify)) as http:
        # A pause far longer than the test: it ends only where the test ends it (retry_at = 0),
        # not because a loaded machine took half a second over five passes.
        relay = _relay(app, http, "notify", probe_base_seconds=3600.0, probe_max_seconds=3600.0)
        assert await relay.run_once() == 0  # the first post fails: the destination is paused
        async with app.state.sessionmaker() as s:
            rows = (await s.execute(select(outbox_events))).all()
        assert len(rows) == 5
        for row in rows:
            assert row.attempts == 1 and row.delivered_at is None and row.claimed_until is None
            assert "HTTP 503" in row.last_error
            # The events keep their place: the destination is what waits, not each event.
            assert row.available_at == row.created_at
        for _ in range(5):
            assert await relay.run_once() == 0  # paused: nothing is posted
        assert len(posts) == 1
        relay.circuit("notify").retry_at = 0.0  # the pause is over: one probe, still down
        assert await relay.run_once() == 0
        assert posts[-1] == [] and len(posts) == 2
        assert relay.circuit("notify").failures == 2
        assert await relay.run_once() == 0 and len(posts) == 2  # paused again
        up["now"] = True
        relay.circuit("notify").retry_at = 0.0
        assert await relay.run_once() == 1  # the probe: the oldest event alone
        assert await relay.run_once() == 4  # answered: the rest at once
        assert await relay.run_once() == 0
    assert posts[2:] == [ids[:1], ids[1:]]
    assert await _pending_ids(app) == set()


async def test_an_event_its_destination_always_fails_does_not_hold_back_the_others(
    app: FastAPI,
) -> None:
    """A consumer's bug answering one event 500 every time: after SUSPECT_AFTER failures that
    event goes alone and waits its own backoff, and the events behind it are delivered."""
    ids = await _queue(app, 6, ["notify"])
    poison = ids[0]  # the oldest: the one every probe would pick
    posts: list[list[str]] = []

    def notify(request: httpx.Request) -> httpx.Response:
        events = [e["id"] for e in json.loads(request.content)]
        posts.append(events)
        if poison in events:
            return httpx.Response(500, text="internal error")
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(notify)) as http:
        relay = _relay(app, http, "notify", probe_base_seconds=3600.0, probe_max_seconds=3600.0)
        delivered = 0
        for _ in range(SUSPECT_AFTER + 3):
            relay.circuit("notify").retry_at = 0.0  # each pause ends where the test says
            delivered += await relay.run_once()
    assert delivered == 5
    assert await _pending_ids(app) == {f"{poison}:notify"}
    # Batch, probe, probe: then alone, never again in a batch with others.
    assert [poison in p for p in posts[:SUSPECT_AFTER]] == [True] * SUSPECT_AFTER
    assert all(p == [poison] for p in posts[SUSPECT_AFTER:] if poison in p)
    assert relay.circuit("notify").closed()
    async with app.state.sessionmaker() as s:
        row = (
            await s.execute(select(outbox_events).where(outbox_events.c.event_id == poison))
        ).one()
    assert row.attempts >= SUSPECT_AFTER and "HTTP 500" in row.last_error
    assert row.available_at > row.created_at  # its own backoff, behind the others


async def test_other_destinations_keep_flowing_while_one_is_down(app: FastAPI) -> None:
    await _queue(app, 3, ["notify", "license"])
    hits = {"notify": 0, "license": 0}

    def route(request: httpx.Request) -> httpx.Response:
        name = request.url.host.split(".")[0]
        hits[name] += 1
        if name == "notify":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(route)) as http:
        relay = _relay(app, http, "notify", "license")
        assert await relay.run_once() == 3
        for _ in range(3):
            assert await relay.run_once() == 0
    assert hits == {"notify": 1, "license": 1}
    assert await _pending_ids(app) == {f"evt-{n:03d}:notify" for n in range(3)}


async def test_events_a_destination_refuses_back_off_on_their_own(app: FastAPI) -> None:
    await _queue(app, 2, ["notify"])

    def refuse(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, text="bad event")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        relay = _relay(app, http, "notify")
        before = datetime.now(UTC)
        assert await relay.run_once() == 0
        assert relay.circuit("notify").closed()  # it answered: it is up
    async with app.state.sessionmaker() as s:
        rows = (await s.execute(select(outbox_events))).all()
    for row in rows:
        assert row.attempts == 1 and "HTTP 422" in row.last_error
        # Each event waits its own backoff (the first: half to all of the base, 0.5 s), counted
        # from its failure; not compared with the clock now, which a slow machine may have
        # carried past it by the time the rows are read.
        assert row.available_at >= before + timedelta(seconds=0.25)


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
    assert len(first) == 2 and second == []  # the submission's rows for notify and license
    # Releasing (as on SIGTERM) makes the rows available again.
    relay._claimed.update(r[0] for r in first)
    await relay.stop()
    assert len(await relay._claim()) == 2


async def test_running_relay_reports_its_backlog(app: FastAPI) -> None:
    import asyncio

    from prometheus_client import REGISTRY

    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(delete(outbox_events))
    for _ in range(2):
        # One session per submission, as one request each: a submission without an idempotency
        # key is the request's lone autocommitted statement, sent on its own connection.
        async with app.state.sessionmaker() as session:
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
    assert REGISTRY.get_sample_value("outbox_pending") == 4  # for notify and for license


async def test_an_event_refused_for_long_shows_in_the_age_of_the_oldest(app: FastAPI) -> None:
    """An event its subscriber keeps refusing is retried with backoff for ever, a failure every
    few minutes at most: the age of the oldest undelivered row is what an alert can see."""
    from prometheus_client import REGISTRY

    await _queue(app, 2, ["notify"])
    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(
            outbox_events.update()
            .where(outbox_events.c.id == "evt-000:notify")
            .values(created_at=datetime.now(UTC) - timedelta(hours=2))
        )
    accepting = False

    def notify(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(202) if accepting else httpx.Response(422, text="bad event")

    async with httpx.AsyncClient(transport=httpx.MockTransport(notify)) as http:
        relay = _relay(app, http, "notify", base_backoff=0.01)
        assert await relay.run_once() == 0
        await relay.measure()
        assert REGISTRY.get_sample_value("outbox_pending") == 2
        assert 7200 <= (REGISTRY.get_sample_value("outbox_oldest_pending_seconds") or 0) < 7300
        accepting = True  # the subscriber fixed: the event goes out by itself
        await asyncio.sleep(0.05)
        assert await relay.run_once() == 2
        await relay.measure()
    assert REGISTRY.get_sample_value("outbox_pending") == 0
    assert REGISTRY.get_sample_value("outbox_oldest_pending_seconds") == 0


async def test_a_batch_stays_within_what_the_receiver_takes(app: FastAPI) -> None:
    """Thirty events of 100 KB: one post of them all would be 3 MB, over the 1 MiB every
    service's edge takes (413). The relay cuts them into posts of at most 768 KiB, in order."""
    from govshared.outbox import MAX_BATCH_BYTES

    async with app.state.sessionmaker() as s, s.begin():
        await s.execute(delete(outbox_events))
        start = datetime.now(UTC) - timedelta(minutes=1)
        for n in range(30):
            at = start + timedelta(seconds=n)
            await s.execute(
                insert(outbox_events).values(
                    id=f"big-{n:02d}:notify",
                    event_id=f"big-{n:02d}",
                    event_type="cn.gov.approval.application.submitted.v1",
                    destination="notify",
                    payload=json.dumps({"id": f"big-{n:02d}", "data": {"text": "许" * 17_000}}),
                    created_at=at,
                    available_at=at,
                    attempts=0,
                )
            )
    posts: list[list[str]] = []
    sizes: list[int] = []

    def notify(request: httpx.Request) -> httpx.Response:
        if len(request.content) > 1024 * 1024:
            return httpx.Response(413)
        posts.append([e["id"] for e in json.loads(request.content)])
        sizes.append(len(request.content))
        return httpx.Response(202)

    async with httpx.AsyncClient(transport=httpx.MockTransport(notify)) as http:
        assert await _relay(app, http, "notify").run_once() == 30
    assert [i for post in posts for i in post] == [f"big-{n:02d}" for n in range(30)]
    assert len(posts) > 1 and max(sizes) <= MAX_BATCH_BYTES < 1024 * 1024


async def test_a_post_gets_at_most_half_the_lease(app: FastAPI) -> None:
    """A destination that does not answer cannot hold rows past the relay's claim on them."""
    import asyncio

    await _queue(app, 1, ["notify"])

    async def hang(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http:
        relay = OutboxRelay(
            sessionmaker=app.state.sessionmaker,
            table=outbox_events,
            destinations={"notify": Destination("http://notify.test/api/v1/events")},
            http=http,
            lease_seconds=0.4,
        )
        assert await relay.run_once() == 0
        assert not relay.circuit("notify").closed()
    async with app.state.sessionmaker() as s:
        (row,) = (await s.execute(select(outbox_events))).all()
    assert "half the lease" in row.last_error and row.claimed_until is None
