"""Migrations: one head, and upgrade → downgrade → upgrade on both databases (alphagov, Polar)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from govshared.migrate import downgrade, upgrade
from govshared.testing import BACKENDS, drop_postgres_database, make_database
from notify.main import ALEMBIC_INI
from notify.models import Base, InboxMessage, InboxStreamCounter
from notify.repository import InboxRepository

from .test_stream_order import message

TABLES = {
    "inbox_messages",
    "inbox_stream_counter",
    "deliveries",
    "delivery_status_history",
    "recipient_profiles",
    "webhook_subscriptions",
    "templates",
    "outbox_events",
    "inbox_events",
    "idempotency_keys",
}


def test_single_head() -> None:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, heads


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = await make_database(backend, prefix="notify_migration", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert await table_names(url) == TABLES
        await asyncio.to_thread(downgrade, ALEMBIC_INI, url)
        assert await table_names(url) == set()
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert await table_names(url) == TABLES
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_models_match_migrations(backend: str, tmp_path: Path) -> None:
    url = await make_database(backend, prefix="notify_drift", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda c: compare_metadata(
                        MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()
        assert diff == []
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_existing_messages_are_numbered_in_the_old_streams_order(
    backend: str, tmp_path: Path
) -> None:
    """n0004 numbers the messages already there by (created_at, id), the order the stream sent
    them in before, and starts the counter after the last; new messages come after them."""
    url = await make_database(backend, prefix="notify_stream_seq", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url, "n0003_deliveries_scope")
        now = datetime.now(UTC).replace(microsecond=0)
        stamps = [now, now - timedelta(seconds=5), now, now - timedelta(seconds=5), now]
        rows = [message("91310000MA1FL0000X", at) for at in stamps]
        engine = create_async_engine(url)
        table = cast(Table, InboxMessage.__table__)
        try:
            async with engine.begin() as conn:  # the columns n0003 has: no stream_seq yet
                await conn.execute(table.insert(), rows)
            await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
            async with AsyncSession(engine) as session:
                numbered = (
                    await session.execute(
                        select(InboxMessage.id, InboxMessage.stream_seq).order_by(
                            InboxMessage.stream_seq
                        )
                    )
                ).all()
                assert await session.scalar(select(InboxStreamCounter.value)) == len(rows)
                later = {**rows[0], "id": uuid.uuid4(), "event_id": "ev-later"}
                await InboxRepository(session).insert_many([later])
                await session.commit()
                assert (
                    await session.scalar(
                        select(InboxMessage.stream_seq).where(InboxMessage.id == later["id"])
                    )
                    == len(rows) + 1
                )
        finally:
            await engine.dispose()
        expected = sorted(rows, key=lambda r: (r["created_at"], r["id"]))
        assert [ident for ident, _ in numbered] == [r["id"] for r in expected]
        assert [seq for _, seq in numbered] == list(range(1, len(rows) + 1))
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)
