"""Migrations: one head; upgrade, downgrade, upgrade on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from govshared.migrate import alembic_config, downgrade, upgrade
from govshared.testing import BACKENDS, drop_postgres_database, make_database
from licensing.main import ALEMBIC_INI
from licensing.models import Base

TABLES = {
    "reform_items",
    "reform_item_versions",
    "licence_types",
    "licences",
    "licence_history",
    "verification_tasks",
    "credit_records",
    "outbox_events",
    "inbox_events",
    "idempotency_keys",
}


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config(ALEMBIC_INI, "sqlite://"))
    assert len(script.get_heads()) == 1


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def _drift(url: str) -> list[object]:
    """Differences between the migrated schema and the models (autogenerate's view)."""
    engine = create_async_engine(url)
    async with engine.connect() as conn:

        def compare(sync_conn: Connection) -> list[object]:
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = await make_database(backend, prefix="license_mig", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        tables = await _tables(url)
        assert tables >= TABLES
        # The migration creates exactly what the models declare.
        assert tables - {"alembic_version"} == set(Base.metadata.tables)
        await asyncio.to_thread(downgrade, ALEMBIC_INI, url, "base")
        assert await _tables(url) <= {"alembic_version"}
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert await _tables(url) >= TABLES
        assert await _drift(url) == []
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)
