"""The transactional outbox: events commit with the business change, a relay delivers them.

``OutboxWriter.add`` inserts one row per subscribed destination in the caller's session, so the
event exists exactly when the change does. ``OutboxRelay`` claims due rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so that replicas share the work; SQLite has a single writer) and posts them
to the destination in batches. A destination that fails is paused (a circuit breaker per
destination, probed with one event after a growing pause) while the others keep receiving; an
event a destination refuses is retried on its own with exponential backoff and jitter. Claims are
leases: a relay that dies mid-delivery leaves rows that another picks up after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import Counter, Gauge
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.backoff import backoff_seconds
from govshared.db import UTCDateTime, after_commit
from govshared.events import CLOUDEVENTS_BATCH_JSON, CloudEvent
from govshared.sql import dialect_name
from govshared.sqlbatch import execute_insert
from govshared.sqlcopy import copy_rows

logger = logging.getLogger("govshared.outbox")

OUTBOX_DELIVERED = Counter("outbox_delivered_total", "Outbox events delivered", ["destination"])
OUTBOX_FAILED = Counter(
    "outbox_delivery_failures_total", "Failed outbox delivery attempts", ["destination"]
)
OUTBOX_PENDING = Gauge("outbox_pending", "Outbox rows not yet delivered (measured by the relay)")
OUTBOX_OLDEST = Gauge(
    "outbox_oldest_pending_seconds",
    "Age of the oldest outbox row not yet delivered, 0 when none (an event a subscriber keeps "
    "refusing is retried with backoff for ever: this is how anyone learns of it)",
)
OUTBOX_PAUSED = Gauge(
    "outbox_destination_paused",
    "1 while this relay's circuit to the destination is open (it failed; probed after a pause)",
    ["destination"],
)
PENDING_GAUGE_SECONDS = 10.0


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox_events`` table on a service's metadata."""
    table = Table(
        "outbox_events",
        metadata,
        Column("id", String(80), primary_key=True),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("destination", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("available_at", UTCDateTime(), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("claimed_until", UTCDateTime(), nullable=True),
        Column("delivered_at", UTCDateTime(), nullable=True),
        Column("last_error", Text, nullable=True),
    )
    Index(
        "ix_outbox_events_pending",
        table.c.available_at,
        postgresql_where=table.c.delivered_at.is_(None),
        sqlite_where=table.c.delivered_at.is_(None),
    )
    return table


class OutboxWriter:
    """Adds events to the outbox in the caller's transaction, one row per subscribed destination."""

    def __init__(self, table: Table, subscriptions: Mapping[str, Sequence[str]]) -> None:
        """``subscriptions`` maps a destination name to the event type patterns it receives."""
        self._table = table
        self._insert = insert(table)  # built once: rows go beside it
        self._subscriptions = {dest: list(patterns) for dest, patterns in subscriptions.items()}
        self._destinations: dict[str, list[str]] = {}  # per event type (a closed set)
        self._wakes: list[Callable[[AsyncSession], None]] = []

    def on_commit(self, wake: Callable[[AsyncSession], None]) -> None:
        """Call ``wake`` after a transaction that wrote events commits (nudges in-process workers)."""
        self._wakes.append(wake)

    def destinations(self, event_type: str) -> list[str]:
        """The destinations subscribed to an event type."""
        found = self._destinations.get(event_type)
        if found is None:
            found = [
                dest
                for dest, patterns in self._subscriptions.items()
                if any(fnmatch.fnmatchcase(event_type, p) for p in patterns)
            ]
            self._destinations[event_type] = found
        return found

    async def add(self, session: AsyncSession, event: CloudEvent) -> None:
        """Insert the event for every subscriber (Core statement: this is a hot path)."""
        destinations = self.destinations(event.type)
        if not destinations:
            return
        now = datetime.now(UTC)
        payload = event.model_dump_json()
        await execute_insert(
            session,
            self._insert,
            [
                {
                    "id": f"{event.id}:{dest}",
                    "event_id": event.id,
                    "event_type": event.type,
                    "destination": dest,
                    "payload": payload,
                    "created_at": now,
                    "available_at": now,
                    "attempts": 0,
                }
                for dest in destinations
            ],
        )
        for wake in self._wakes:
            after_commit(session, wake)

    async def add_many(self, session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        """Insert several events at once (COPY on PostgreSQL: a draw schedules thousands of
        inspections)."""
        now = datetime.now(UTC)
        rows = [
            {
                "id": f"{event.id}:{dest}",
                "event_id": event.id,
                "event_type": event.type,
                "destination": dest,
                "payload": event.model_dump_json(),
                "created_at": now,
                "available_at": now,
                "attempts": 0,
            }
            for event in events
            for dest in self.destinations(event.type)
        ]
        if not rows:
            return
        await copy_rows(session, self._table, rows)
        for wake in self._wakes:
            after_commit(session, wake)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a destination's events are posted, with the token to present."""

    url: str
    token: Callable[[], str] | None = None


# A failed post that says the destination is down or overloaded (nothing wrong with the events):
# the relay pauses the destination. Any other 4xx refuses these events: they alone wait.
_DESTINATION_STATUSES = frozenset({408, 425, 429})
PROBE_BASE_SECONDS = 0.5
# An event that failed this many attempts is sent alone, never in a batch or as a probe, and on
# failure waits its own backoff: an event its destination cannot take (a consumer's bug answering
# it 500 every time) would otherwise fail every batch it is in and every probe, holding back all
# the events behind it for good. Two attempts (the batch that opened the circuit and one probe)
# stay ordinary, so an outage's first probe keeps the queue's order.
SUSPECT_AFTER = 3


@dataclass(slots=True)
class Circuit:
    """A destination's circuit breaker: closed (deliver), open (wait), half-open (one probe).

    After a failure the destination is left alone until ``retry_at``, a pause that doubles with
    each failure in a row (the suite's backoff, with jitter, up to the relay's cap); then one event
    is tried; its success closes the circuit and the backlog goes out at once, in order.
    """

    failures: int = 0
    retry_at: float = 0.0  # time.monotonic()

    def closed(self) -> bool:
        """Deliver as usual."""
        return self.failures == 0

    def probing(self, now: float) -> bool:
        """The pause is over: one event may be tried."""
        return self.failures > 0 and now >= self.retry_at


MAX_BATCH_BYTES = 768 * 1024
"""The largest body a relay posts (but for one event larger alone): under the receivers' default
``MAX_JSON_BYTES`` of 1 MiB, with room for the batch's brackets and commas."""


def _chunks_of_bytes(
    items: list[tuple[str, str]], max_bytes: int
) -> Iterator[list[tuple[str, str]]]:
    """``items`` (row id, payload) in order, cut into runs whose payloads together stay within
    ``max_bytes`` (one payload larger than that goes alone)."""
    chunk: list[tuple[str, str]] = []
    size = 2  # the brackets
    for item in items:
        grows = len(item[1].encode()) + 1  # and its comma
        if chunk and size + grows > max_bytes:
            yield chunk
            chunk, size = [], 2
        chunk.append(item)
        size += grows
    if chunk:
        yield chunk


@dataclass(frozen=True, slots=True)
class _Result:
    error: str | None  # None: delivered
    destination_down: bool = False


class OutboxRelay:
    """Delivers pending outbox rows; run it in-process (embedded) or as a worker replica.

    A row is claimed for ``lease_seconds``; each post gets at most half of that (connect, send and
    answer together), so that a live relay's claim never runs out under it. A destination that
    fails (unreachable, 5xx, 408/429, no answer in time) opens its ``Circuit``: its rows stay where
    they are in the queue, untouched by the failure, and the others keep flowing. A destination
    that refuses a batch (another 4xx) is up; those events back off on their own. An event that
    failed ``SUSPECT_AFTER`` attempts goes alone, one a pass, and backs off on its own whatever
    the failure: the circuit is for destinations, not for one event they cannot take.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        destinations: Mapping[str, Destination],
        http: httpx.AsyncClient,
        batch_size: int = 100,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        poll_interval: float = 0.5,
        lease_seconds: float = 30.0,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
        probe_base_seconds: float = PROBE_BASE_SECONDS,
        probe_max_seconds: float = 10.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._table = table
        self._destinations = dict(destinations)
        self._http = http
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease_seconds)
        self._post_deadline = lease_seconds / 2
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._probe_base = probe_base_seconds
        self._probe_max = max(probe_max_seconds, probe_base_seconds)
        self._circuits: dict[str, Circuit] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._claimed: set[str] = set()

    def wake(self, _session: AsyncSession | None = None) -> None:
        """Deliver now instead of at the next poll."""
        self._wakeup.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before an event a destination refused is offered again."""
        return backoff_seconds(attempts, base=self._base_backoff, cap=self._max_backoff)

    def circuit(self, destination: str) -> Circuit:
        """The destination's circuit (closed until it fails)."""
        return self._circuits.setdefault(destination, Circuit())

    async def _claim(self) -> list[tuple[str, str, str, bool]]:
        """Rows to post, each with whether it goes alone (a suspect: ``SUSPECT_AFTER``)."""
        t = self._table
        now = datetime.now(UTC)
        clock = time.monotonic()
        paused = [d for d, c in self._circuits.items() if not c.closed()]
        probes = [d for d in paused if self._circuits[d].probing(clock)]
        async with self._sessionmaker() as session, session.begin():
            due = and_(
                t.c.delivered_at.is_(None),
                t.c.available_at <= now,
                or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
            )
            postgresql = dialect_name(session) == "postgresql"
            ordinary = t.c.attempts < SUSPECT_AFTER
            open_ones = [t.c.destination.not_in(paused)] if paused else []
            queries = [
                (
                    select(t.c.id, t.c.destination, t.c.payload)
                    .where(due, ordinary, *open_ones)
                    .order_by(t.c.available_at)
                    .limit(self._batch_size),
                    False,
                )
            ]
            # A paused destination whose pause is over gets one event: its oldest ordinary one.
            queries += [
                (
                    select(t.c.id, t.c.destination, t.c.payload)
                    .where(due, ordinary, t.c.destination == destination)
                    .order_by(t.c.available_at)
                    .limit(1),
                    False,
                )
                for destination in probes
            ]
            # And one suspect a pass, to a destination that is not paused, alone.
            queries.append(
                (
                    select(t.c.id, t.c.destination, t.c.payload)
                    .where(due, t.c.attempts >= SUSPECT_AFTER, *open_ones)
                    .order_by(t.c.available_at)
                    .limit(1),
                    True,
                )
            )
            rows: list[tuple[str, str, str, bool]] = []
            for query, alone in queries:
                if postgresql:
                    query = query.with_for_update(skip_locked=True)
                rows += [
                    (r.id, r.destination, r.payload, alone) for r in (await session.execute(query))
                ]
            if rows:
                await session.execute(
                    update(t)
                    .where(t.c.id.in_([r[0] for r in rows]))
                    .values(claimed_until=now + self._lease)
                )
        return rows

    async def _post(self, destination: str, payloads: list[str]) -> _Result:
        """Post a batch to the destination."""
        target = self._destinations.get(destination)
        if target is None:
            return _Result(f"no URL configured for destination {destination!r}", True)
        headers = {"Content-Type": CLOUDEVENTS_BATCH_JSON}
        if target.token is not None:
            headers["Authorization"] = f"Bearer {target.token()}"
        body = "[" + ",".join(payloads) + "]"
        try:
            async with asyncio.timeout(self._post_deadline):
                response = await self._http.post(target.url, content=body.encode(), headers=headers)
        except TimeoutError:
            return _Result(f"no answer within {self._post_deadline:g} s (half the lease)", True)
        except httpx.HTTPError as exc:
            return _Result(f"{type(exc).__name__}: {exc}", True)
        if response.status_code >= 300:
            down = response.status_code >= 500 or response.status_code in _DESTINATION_STATUSES
            return _Result(f"HTTP {response.status_code}: {response.text[:500]}", down)
        return _Result(None)

    async def run_once(self) -> int:
        """Claim and deliver one batch; the number of rows delivered."""
        rows = await self._claim()
        if not rows:
            return 0
        self._claimed.update(r[0] for r in rows)
        # One post a destination, and one more for a suspect (alone); a destination's rows that
        # would make a body larger than ``max_batch_bytes`` go in more posts, in order (the
        # receivers refuse a JSON body over their MAX_JSON_BYTES, 1 MiB by default, with a 413).
        grouped: dict[tuple[str, bool], list[tuple[str, str]]] = {}
        for row_id, destination, payload, alone in rows:
            grouped.setdefault((destination, alone), []).append((row_id, payload))
        posts = [
            (key, chunk)
            for key, items in grouped.items()
            for chunk in _chunks_of_bytes(items, self._max_batch_bytes)
        ]
        results = await asyncio.gather(
            *(self._post(d, [p for _, p in items]) for (d, _alone), items in posts)
        )
        delivered = 0
        now = datetime.now(UTC)
        t = self._table
        async with self._sessionmaker() as session, session.begin():
            for ((destination, alone), items), result in zip(posts, results, strict=True):
                ids = [row_id for row_id, _ in items]
                error = result.error
                if error is None:
                    await session.execute(
                        update(t)
                        .where(t.c.id.in_(ids))
                        .values(delivered_at=now, claimed_until=None, attempts=t.c.attempts + 1)
                    )
                    delivered += len(ids)
                    OUTBOX_DELIVERED.labels(destination).inc(len(ids))
                    self._close(destination)
                    continue
                OUTBOX_FAILED.labels(destination).inc()
                if result.destination_down and not alone:
                    # The events are fine: they keep their place in the queue (no backoff of
                    # their own), and the destination's circuit paces the next attempt.
                    pause = self._open(destination)
                    logger.warning(
                        "outbox destination failed: paused",
                        extra={
                            "destination": destination,
                            "events": len(ids),
                            "error": error,
                            "pause_seconds": round(pause, 2),
                        },
                    )
                    await session.execute(
                        update(t)
                        .where(t.c.id.in_(ids))
                        .values(
                            attempts=t.c.attempts + 1, claimed_until=None, last_error=error[:2000]
                        )
                    )
                    continue
                if alone:
                    logger.warning(
                        "outbox event failed again on its own: it waits its own backoff",
                        extra={"destination": destination, "event": ids[0], "error": error},
                    )
                else:
                    self._close(destination)  # it answered: it is up, these events are the matter
                    logger.warning(
                        "outbox delivery refused",
                        extra={"destination": destination, "events": len(ids), "error": error},
                    )
                attempts = await session.execute(
                    select(t.c.id, t.c.attempts).where(t.c.id.in_(ids))
                )
                for row_id, tried in attempts:
                    await session.execute(
                        update(t)
                        .where(t.c.id == row_id)
                        .values(
                            attempts=tried + 1,
                            claimed_until=None,
                            last_error=error[:2000],
                            available_at=now + timedelta(seconds=self.backoff(tried + 1)),
                        )
                    )
        self._claimed.difference_update(r[0] for r in rows)
        return delivered

    def _open(self, destination: str) -> float:
        """Record a failure of the destination; the pause before its next probe."""
        circuit = self.circuit(destination)
        circuit.failures += 1
        pause = backoff_seconds(circuit.failures, base=self._probe_base, cap=self._probe_max)
        circuit.retry_at = time.monotonic() + pause
        OUTBOX_PAUSED.labels(destination).set(1)
        return pause

    def _close(self, destination: str) -> None:
        circuit = self._circuits.get(destination)
        if circuit is not None and not circuit.closed():
            logger.info(
                "outbox destination answers again",
                extra={"destination": destination, "failures": circuit.failures},
            )
            circuit.failures = 0
            OUTBOX_PAUSED.labels(destination).set(0)

    async def measure(self) -> None:
        """Set the backlog's gauges, what ops alert on: how many rows wait (a subscriber down, a
        relay stuck) and how long the oldest has waited (an event refused again and again, which
        a steady trickle of failures would not show)."""
        t = self._table
        async with self._sessionmaker() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(t.c.created_at)).where(t.c.delivered_at.is_(None))
                )
            ).one()
        OUTBOX_PENDING.set(int(count or 0))
        OUTBOX_OLDEST.set(
            max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest is not None else 0.0
        )

    async def run(self) -> None:
        """Deliver until stopped; errors are logged and retried, never fatal."""
        measured = 0.0
        while not self._stopping:
            try:
                delivered = await self.run_once()
                if time.monotonic() - measured > PENDING_GAUGE_SECONDS:
                    await self.measure()
                    measured = time.monotonic()
            except Exception:
                logger.exception("outbox relay iteration failed")
                delivered = 0
            if delivered:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval)
            self._wakeup.clear()

    async def stop(self) -> None:
        """Stop after the current batch and release any rows still claimed by this relay."""
        self._stopping = True
        self._wakeup.set()
        if self._claimed:
            t = self._table
            async with self._sessionmaker() as session, session.begin():
                await session.execute(
                    update(t)
                    .where(and_(t.c.id.in_(list(self._claimed)), t.c.delivered_at.is_(None)))
                    .values(claimed_until=None)
                )
            self._claimed.clear()


def parse_batch(body: bytes) -> list[CloudEvent]:
    """Events from a structured-mode body: one envelope or a batch array."""
    decoded = json.loads(body)
    items = decoded if isinstance(decoded, list) else [decoded]
    return [CloudEvent.model_validate(item) for item in items]
