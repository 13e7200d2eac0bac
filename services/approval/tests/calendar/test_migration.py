"""The calendar migration: its tables come and go with it, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from approval.main import ALEMBIC_INI
from govshared.migrate import downgrade, upgrade
from govshared.testing import BACKENDS, drop_postgres_database, make_database

CALENDAR_TABLES = {"calendar_days", "calendar_years", "calendar_closures"}


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


@pytest.mark.parametrize("backend", BACKENDS)
async def test_calendar_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = await make_database(backend, prefix="approval_calmig", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert await _tables(url) >= CALENDAR_TABLES
        await asyncio.to_thread(downgrade, ALEMBIC_INI, url, "a0001_initial")
        tables = await _tables(url)
        assert not CALENDAR_TABLES & tables and "applications" in tables
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert await _tables(url) >= CALENDAR_TABLES
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)
