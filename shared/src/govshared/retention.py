"""How long the plumbing's rows are kept: delivered outbox rows, consumed events' ids, idempotency
keys' stored answers. None of them is a record of the administration (the audit trail, the
decisions, the licences and their histories are, and are never deleted here); each only serves for
a while, and kept for ever they grow each service's database by every event and request.

A worker (``python -m <service>.worker``, or the web process's embedded workers) runs
``Retention`` once an hour: rows older than their period are deleted in batches of a thousand, one
transaction each, so no lock is held long. No index is needed: the tables stay at a few days of
rows, which a scan reads in well under a second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, MetaData, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.loops import BackgroundLoop

logger = logging.getLogger("govshared.retention")

# Delivered events: a week to look back at what went where (the subscriber holds its own record).
OUTBOX_DELIVERED_DAYS = 7
# A consumed event's id guards against its redelivery, which comes within a relay's lease (a relay
# that posted and died before recording the delivery): a month is ample.
INBOX_DAYS = 30
# A retried request replays its first answer within this time; the portal retries within minutes.
IDEMPOTENCY_DAYS = 7
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Expiry:
    """Rows of ``table`` whose ``column`` (a UTC timestamp) is older than ``keep``."""

    table: Table
    column: str
    keep: timedelta

    def older_than(self, now: datetime) -> ColumnElement[bool]:
        """The rows past their period at ``now`` (a NULL timestamp never is: a pending event)."""
        return self.table.c[self.column] < now - self.keep


def standard_expiries(*, outbox: Table, inbox: Table, idempotency: Table) -> list[Expiry]:
    """The periods of the three plumbing tables every service has (``govshared.outbox``,
    ``govshared.inbox``, ``govshared.idempotency``)."""
    return [
        Expiry(outbox, "delivered_at", timedelta(days=OUTBOX_DELIVERED_DAYS)),
        Expiry(inbox, "received_at", timedelta(days=INBOX_DAYS)),
        Expiry(idempotency, "created_at", timedelta(days=IDEMPOTENCY_DAYS)),
    ]


class Retention:
    """Deletes the rows past their period, a batch a transaction, once a ``poll_seconds``."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        expiries: list[Expiry],
        poll_seconds: float = 3600.0,
        batch: int = BATCH,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._expiries = expiries
        self._batch = batch
        self._loop = BackgroundLoop(
            self._pass, what="retention pass", poll_seconds=poll_seconds, log=logger
        )

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """Delete every row past its period; how many, by table."""
        now = now or datetime.now(UTC)
        deleted: dict[str, int] = {}
        for expiry in self._expiries:
            table = expiry.table
            key = tuple_(*table.primary_key.columns)
            due = select(*table.primary_key.columns).where(expiry.older_than(now))
            total = 0
            while True:
                async with self._sessionmaker() as session, session.begin():
                    result = await session.execute(
                        delete(table).where(key.in_(due.limit(self._batch)))
                    )
                count = int(result.rowcount or 0)  # type: ignore[attr-defined]
                total += count
                if count < self._batch:
                    break
            deleted[table.name] = total
        if any(deleted.values()):
            logger.info("rows past their retention deleted", extra={"deleted": deleted})
        return deleted

    async def _pass(self) -> bool:
        await self.run_once()
        return False

    async def run(self) -> None:
        """A pass at once, then one a ``poll_seconds``, until stopped."""
        await self._loop.run()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._loop.stop()


def plumbing_retention(
    sessionmaker: async_sessionmaker[AsyncSession], metadata: MetaData
) -> Retention:
    """The retention of a service's plumbing tables (``outbox_events``, ``inbox_events``,
    ``idempotency_keys`` on its metadata), once an hour."""
    return Retention(
        sessionmaker=sessionmaker,
        expiries=standard_expiries(
            outbox=metadata.tables["outbox_events"],
            inbox=metadata.tables["inbox_events"],
            idempotency=metadata.tables["idempotency_keys"],
        ),
    )
