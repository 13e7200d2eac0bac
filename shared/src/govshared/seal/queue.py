"""The sealer's loop: registered documents waiting for the seal, sealed batch after batch.

A service registers a document (a notice, a decision, a licence certificate) as ``pending`` in the
transaction that decided it; its worker runs a ``PendingSealer`` that claims pending rows (with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so worker replicas share the queue and none seals a row
twice), produces each one (sign, lay out, store: no database work, may fail) and records the
batch in the same transaction (fill in the rows, emit the events that announce them). A failed
attempt is written on the row and retried with exponential backoff, so a seal service outage or an
expired seal delays a document and never loses it. Approval's ``DocumentSealer`` and license's
``CertificateSealer`` say what their rows are; this module says how the queue runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.backoff import backoff_seconds
from govshared.loops import BackgroundLoop

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
PENDING_GAUGE_SECONDS = 10.0
# The least time between two passes that did not fill a batch. A sealer is woken by every commit
# that may have registered a document (approval's: every outbox commit, most of which register
# none), and each pass is a transaction with its claim: under load that was hundreds of near-empty
# passes a second per replica, a share of the CPU the sealing itself needed. Waiting this long
# gathers the commits meanwhile into one pass (a document waits at most this much longer).
SETTLE_SECONDS = 0.05

Item = TypeVar("Item")
Result = TypeVar("Result")


def backoff(attempts: int) -> timedelta:
    """How long a document waits after its ``attempts``-th failed attempt (2 s doubling, ≤ 10 min;
    no jitter: one sealer's rows need no spreading)."""
    seconds = backoff_seconds(attempts + 1, base=1.0, cap=MAX_BACKOFF.total_seconds(), jitter=False)
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class SealerMetrics:
    """A sealer's Prometheus metrics (each service names its own)."""

    sealed: Counter
    failures: Counter  # labelled ``error`` (the exception's class)
    pending: Gauge
    seconds: Histogram | None = None  # time to produce one document


@dataclass(slots=True)
class SealRun:
    """What one run did."""

    sealed: int = 0
    failed: int = 0


class PendingSealer(ABC, Generic[Item, Result]):
    """Seals what is pending, batch after batch until nothing is due; then waits to be woken."""

    what = "document"  # for the logs

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: SealerMetrics,
        poll_seconds: float,
        batch_size: int,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._metrics = metrics
        self._batch_size = batch_size
        self._settle = settle_seconds
        self._last_pass = float("-inf")
        self._loop = BackgroundLoop(
            self._pass, what=f"{self.what} sealer pass", poll_seconds=poll_seconds, log=logger
        )
        self._measured = 0.0

    @abstractmethod
    async def claim(self, session: AsyncSession, *, now: datetime, limit: int) -> Sequence[Item]:
        """Pending items due at ``now``, locked until the transaction ends."""

    @abstractmethod
    async def produce(self, item: Item) -> Result:
        """Sign, lay out and store one item (no database work; an exception is a failed attempt)."""

    @abstractmethod
    async def record(
        self, session: AsyncSession, item: Item, result: Result, *, now: datetime
    ) -> None:
        """Fill in the sealed item's row and emit what announces it."""

    async def record_many(
        self, session: AsyncSession, done: Sequence[tuple[Item, Result]], *, now: datetime
    ) -> None:
        """Record a batch's sealed items: by default one ``record`` each; a sealer may write
        them as one statement per table (``executemany``)."""
        for item, result in done:
            await self.record(session, item, result, now=now)

    @abstractmethod
    async def record_failure(
        self, session: AsyncSession, item: Item, *, attempts: int, retry_at: datetime, error: str
    ) -> None:
        """Write a failed attempt on the item's row."""

    @abstractmethod
    def attempts_of(self, item: Item) -> int:
        """Attempts already made on the item."""

    @abstractmethod
    async def count_pending(self, session: AsyncSession) -> int:
        """How many items wait to be sealed."""

    def describe(self, item: Item) -> dict[str, Any]:
        """What the logs say about an item."""
        return {}

    def wake(self, _session: object = None) -> None:
        """Seal now rather than at the next poll (a commit registered something)."""
        self._loop.wake()

    async def run_once(self, *, now: datetime | None = None) -> SealRun:
        """Seal everything due at ``now`` (default: the current time); what was done."""
        total = SealRun()
        while True:
            run = await self._batch(now or datetime.now(UTC))
            total.sealed += run.sealed
            total.failed += run.failed
            if run.sealed + run.failed < self._batch_size:
                return total

    async def _batch(self, now: datetime) -> SealRun:
        run = SealRun()
        async with self._sessionmaker() as session, session.begin():
            done: list[tuple[Item, Result]] = []
            for item in await self.claim(session, now=now, limit=self._batch_size):
                started = time.perf_counter()
                try:
                    result = await self.produce(item)
                except Exception as exc:  # recorded on the row and retried; never lost
                    run.failed += 1
                    await self._failed(session, item, exc, now)
                    continue
                if self._metrics.seconds is not None:
                    self._metrics.seconds.observe(time.perf_counter() - started)
                run.sealed += 1
                done.append((item, result))
            if done:
                await self.record_many(session, done, now=now)
        self._metrics.sealed.inc(run.sealed)
        return run

    async def _failed(
        self, session: AsyncSession, item: Item, exc: Exception, now: datetime
    ) -> None:
        attempts = self.attempts_of(item) + 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        self._metrics.failures.labels(error=type(exc).__name__).inc()
        logger.warning(
            "sealing a %s failed; it will be retried",
            self.what,
            extra={**self.describe(item), "attempts": attempts, "error": error},
        )
        await self.record_failure(
            session, item, attempts=attempts, retry_at=now + backoff(attempts), error=error
        )

    async def pending(self) -> int:
        """How many items wait to be sealed."""
        async with self._sessionmaker() as session:
            return await self.count_pending(session)

    async def _pass(self) -> bool:
        # A pass follows the last one by at least the settle time (a wake meanwhile is kept:
        # this pass sees what it announced).
        wait = self._last_pass + self._settle - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_pass = time.monotonic()
        run = await self.run_once()
        if run.sealed or run.failed:
            logger.info("%ss sealed", self.what, extra={"sealed": run.sealed, "failed": run.failed})
        if time.monotonic() - self._measured > PENDING_GAUGE_SECONDS:
            self._metrics.pending.set(await self.pending())
            self._measured = time.monotonic()
        return False  # run_once sealed everything due

    async def run(self) -> None:
        """Seal until ``stop``; a failing pass is logged and retried (``govshared.loops``)."""
        await self._loop.run()

    def stop(self) -> None:
        """Stop after the current batch."""
        self._loop.stop()
