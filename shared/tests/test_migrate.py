"""Migrations that index a table already holding data do not stop its writers
(``govshared.migrate.create_index_concurrently``), and a failed build does not wedge the next run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from govshared.migrate import downgrade, upgrade
from govshared.testing import BACKENDS, drop_postgres_database, make_database

ENV = """
from sqlalchemy import MetaData

from govshared.migrate import run_env

run_env(MetaData(), default_url=lambda: "sqlite+aiosqlite://")
"""

TABLE = """
import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("items")
"""

INDEX = """
from alembic import op

from govshared.migrate import create_index_concurrently, drop_index_concurrently

revision = "t0002"
down_revision = "t0001"


def upgrade() -> None:
    create_index_concurrently("ix_items_kind", "items", ["kind"])


def downgrade() -> None:
    drop_index_concurrently("ix_items_kind", "items")
"""


MIXED = """
import sqlalchemy as sa
from alembic import op

from govshared.migrate import create_index_concurrently

revision = "t0002"
down_revision = "t0001"


def upgrade() -> None:
    op.add_column("items", sa.Column("colour", sa.String(20)))
    create_index_concurrently("ix_items_colour", "items", ["colour"])


def downgrade() -> None:
    op.drop_column("items", "colour")
"""


@pytest.fixture
def alembic_ini(tmp_path: Path) -> Path:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "migrations" / "env.py").write_text(ENV)
    (versions / "t0001_items.py").write_text(TABLE)
    (versions / "t0002_items_kind.py").write_text(INDEX)
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = migrations\n")
    return ini


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def indexes(url: str) -> dict[str, bool]:
    """The items table's indexes by name, with whether each is unique."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: inspect(c).get_indexes("items"))
    finally:
        await engine.dispose()
    return {ix["name"]: bool(ix["unique"]) for ix in found}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_index_is_built_and_dropped_on_both_databases(
    backend: str, tmp_path: Path, alembic_ini: Path
) -> None:
    url = await make_database(backend, prefix="migrate_index", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, alembic_ini, url)
        assert await indexes(url) == {"ix_items_kind": False}
        await asyncio.to_thread(downgrade, alembic_ini, url, "t0001")
        assert await indexes(url) == {}
        await asyncio.to_thread(upgrade, alembic_ini, url)
        assert await indexes(url) == {"ix_items_kind": False}
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_writers_go_on_while_the_index_waits_for_a_long_transaction(
    backend: str, tmp_path: Path, alembic_ini: Path
) -> None:
    """A plain CREATE INDEX waiting for its SHARE lock behind an open write transaction queues
    every later writer behind it (here: an INSERT that times out after 3 s). Built concurrently,
    the index waits for that transaction while the INSERT goes through at once."""
    url = await make_database(backend, prefix="migrate_writers", directory=tmp_path)
    long_writer = writer = None
    try:
        await asyncio.to_thread(upgrade, alembic_ini, url, "t0001")
        long_writer = await asyncpg.connect(asyncpg_dsn(url))
        writer = await asyncpg.connect(asyncpg_dsn(url))
        open_transaction = long_writer.transaction()
        await open_transaction.start()
        await long_writer.execute("INSERT INTO items (kind) VALUES ('long')")

        migration = asyncio.create_task(asyncio.to_thread(upgrade, alembic_ini, url))
        deadline = time.monotonic() + 8
        while True:
            waiting = await writer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query ILIKE 'CREATE INDEX%' AND wait_event_type = 'Lock'"
            )
            if waiting or migration.done() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert waiting == 1, "the index build waits for the open transaction"

        await writer.execute("SET statement_timeout = '3s'")
        started = time.monotonic()
        await writer.execute("INSERT INTO items (kind) VALUES ('meanwhile')")
        assert time.monotonic() - started < 1.0

        await open_transaction.commit()
        await migration
        assert await indexes(url) == {"ix_items_kind": False}
        assert await writer.fetchval("SELECT count(*) FROM items") == 2
    finally:
        for conn in (long_writer, writer):
            if conn is not None:
                await conn.close()
        await drop_postgres_database(url)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_an_invalid_index_left_by_a_failed_build_is_built_again(
    backend: str, tmp_path: Path, alembic_ini: Path
) -> None:
    """A concurrent build that fails leaves an INVALID index of its name, which the planner never
    uses; the next run of the migration replaces it with the index it asks for."""
    url = await make_database(backend, prefix="migrate_invalid", directory=tmp_path)
    conn = None
    try:
        await asyncio.to_thread(upgrade, alembic_ini, url, "t0001")
        conn = await asyncpg.connect(asyncpg_dsn(url))
        await conn.execute("INSERT INTO items (kind) VALUES ('same'), ('same')")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_items_kind ON items (kind)")
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_items_kind'::regclass"
        assert await conn.fetchval(valid) is False

        await asyncio.to_thread(upgrade, alembic_ini, url)
        assert await conn.fetchval(valid) is True
        assert await indexes(url) == {"ix_items_kind": False}
    finally:
        if conn is not None:
            await conn.close()
        await drop_postgres_database(url)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_concurrent_index_after_other_steps_is_refused_before_anything_is_committed(
    backend: str, tmp_path: Path, alembic_ini: Path
) -> None:
    """The autocommit block would commit the column without the revision; a build failing then
    would leave a migration no run completes (the column exists, the revision is not stamped).
    So the helper refuses to run after other steps, and nothing of the migration stays."""
    (alembic_ini.parent / "migrations" / "versions" / "t0002_items_kind.py").write_text(MIXED)
    url = await make_database(backend, prefix="migrate_mixed", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, alembic_ini, url, "t0001")
        with pytest.raises(RuntimeError, match="migration of its own"):
            await asyncio.to_thread(upgrade, alembic_ini, url)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'"
            )
            assert {c["column_name"] for c in columns} == {"id", "kind"}
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == "t0001"
        finally:
            await conn.close()
    finally:
        await drop_postgres_database(url)
