"""The transactional outbox: events commit with the business change, a relay delivers them.

``OutboxWriter.add`` inserts one row per subscribed destination in the caller's session, so the
event exists exactly when the change does. ``OutboxRelay`` claims due rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so that replicas share the work; SQLite has a single writer), posts them to
the destination in batches, and on failure schedules a retry with exponential backoff and jitter.
Claims are leases: a relay that dies mid-delivery leaves rows that another picks up after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
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

from govshared.db import UTCDateTime, after_commit
from govshared.events import CLOUDEVENTS_BATCH_JSON, CloudEvent
from govshared.sql import dialect_name, execute_insert

logger = logging.getLogger("govshared.outbox")

OUTBOX_DELIVERED = Counter("outbox_delivered_total", "Outbox events delivered", ["destination"])
OUTBOX_FAILED = Counter(
    "outbox_delivery_failures_total", "Failed outbox delivery attempts", ["destination"]
)
OUTBOX_PENDING = Gauge("outbox_pending", "Outbox rows not yet delivered (measured by the relay)")
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


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a destination's events are posted, with the token to present."""

    url: str
    token: Callable[[], str] | None = None


class OutboxRelay:
    """Delivers pending outbox rows; run it in-process (embedded) or as a worker replica."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: Table,
        destinations: Mapping[str, Destination],
        http: httpx.AsyncClient,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        lease_seconds: float = 30.0,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._table = table
        self._destinations = dict(destinations)
        self._http = http
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease_seconds)
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._claimed: set[str] = set()

    def wake(self, _session: AsyncSession | None = None) -> None:
        """Deliver now instead of at the next poll."""
        self._wakeup.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: exponential, capped, with full jitter on the upper half."""
        ceiling = min(self._max_backoff, self._base_backoff * 2 ** max(attempts - 1, 0))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security

    async def _claim(self) -> list[tuple[str, str, str]]:
        t = self._table
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            query = (
                select(t.c.id, t.c.destination, t.c.payload)
                .where(
                    t.c.delivered_at.is_(None),
                    t.c.available_at <= now,
                    or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
                )
                .order_by(t.c.available_at)
                .limit(self._batch_size)
            )
            if dialect_name(session) == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [(r.id, r.destination, r.payload) for r in (await session.execute(query))]
            if rows:
                await session.execute(
                    update(t)
                    .where(t.c.id.in_([r[0] for r in rows]))
                    .values(claimed_until=now + self._lease)
                )
        return rows

    async def _post(self, destination: str, payloads: list[str]) -> str | None:
        """Post a batch; the error text, or None on success."""
        target = self._destinations.get(destination)
        if target is None:
            return f"no URL configured for destination {destination!r}"
        headers = {"Content-Type": CLOUDEVENTS_BATCH_JSON}
        if target.token is not None:
            headers["Authorization"] = f"Bearer {target.token()}"
        body = "[" + ",".join(payloads) + "]"
        try:
            response = await self._http.post(target.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code >= 300:
            return f"HTTP {response.status_code}: {response.text[:500]}"
        return None

    async def run_once(self) -> int:
        """Claim and deliver one batch; the number of rows delivered."""
        rows = await self._claim()
        if not rows:
            return 0
        self._claimed.update(r[0] for r in rows)
        by_destination: dict[str, list[tuple[str, str]]] = {}
        for row_id, destination, payload in rows:
            by_destination.setdefault(destination, []).append((row_id, payload))
        results = await asyncio.gather(
            *(self._post(d, [p for _, p in items]) for d, items in by_destination.items())
        )
        delivered = 0
        now = datetime.now(UTC)
        t = self._table
        async with self._sessionmaker() as session, session.begin():
            for (destination, items), error in zip(by_destination.items(), results, strict=True):
                ids = [row_id for row_id, _ in items]
                if error is None:
                    await session.execute(
                        update(t)
                        .where(t.c.id.in_(ids))
                        .values(delivered_at=now, claimed_until=None, attempts=t.c.attempts + 1)
                    )
                    delivered += len(ids)
                    OUTBOX_DELIVERED.labels(destination).inc(len(ids))
                    continue
                OUTBOX_FAILED.labels(destination).inc()
                logger.warning(
                    "outbox delivery failed",
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

    async def pending(self) -> int:
        """Rows not yet delivered."""
        t = self._table
        async with self._sessionmaker() as session:
            count = await session.scalar(
                select(func.count()).select_from(t).where(t.c.delivered_at.is_(None))
            )
        return int(count or 0)

    async def run(self) -> None:
        """Deliver until stopped; errors are logged and retried, never fatal."""
        measured = 0.0
        while not self._stopping:
            try:
                delivered = await self.run_once()
                if time.monotonic() - measured > PENDING_GAUGE_SECONDS:
                    # The backlog is what ops alert on (a subscriber down, a relay stuck).
                    OUTBOX_PENDING.set(await self.pending())
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
