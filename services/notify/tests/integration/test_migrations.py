"""Migrations: one head, and upgrade → downgrade → upgrade on both databases (alphagov, Polar)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from govshared.migrate import downgrade, upgrade
from govshared.testing import BACKENDS, drop_postgres_database, make_database
from notify.main import ALEMBIC_INI
from notify.models import Base

TABLES = {
    "inbox_messages",
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
