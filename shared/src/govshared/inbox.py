"""The consumer's inbox: an event id recorded in the same transaction as its effect.

Delivery is at least once; recording ``(consumer, event_id)`` with the effect makes the effect
exactly once: a redelivered event finds its row and does nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.db import UTCDateTime
from govshared.sql import insert_ignore


def inbox_table(metadata: MetaData) -> Table:
    """The ``inbox_events`` table on a service's metadata."""
    return Table(
        "inbox_events",
        metadata,
        Column("consumer", String(64), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("received_at", UTCDateTime(), nullable=False),
    )


async def record_event_once(
    session: AsyncSession, table: Table, *, consumer: str, event_id: str, event_type: str
) -> bool:
    """Record the event; False when it was already recorded (a redelivery: do nothing)."""
    result = await session.execute(
        insert_ignore(session, table, index_elements=["consumer", "event_id"]),
        {
            "consumer": consumer,
            "event_id": event_id,
            "event_type": event_type,
            "received_at": datetime.now(UTC),
        },
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
