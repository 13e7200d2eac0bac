"""Migrations: one head; upgrade, downgrade, upgrade on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from approval.main import ALEMBIC_INI
from govshared.migrate import alembic_config, downgrade, upgrade
from govshared.testing import BACKENDS, drop_postgres_database, make_database


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config(ALEMBIC_INI, "sqlite://"))
    assert len(script.get_heads()) == 1


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = await make_database(backend, prefix="approval_mig", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert {
            "applications",
            "outbox_events",
            "inbox_events",
            "application_clocks",
            "application_clock_entries",
        } <= await _tables(url)
        await asyncio.to_thread(downgrade, ALEMBIC_INI, url, "base")
        assert await _tables(url) <= {"alembic_version"}
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert "applications" in await _tables(url)
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)
