"""Alembic plumbing shared by the services' ``migrations/env.py`` and by tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from govshared.db import private_sqlite_file


def alembic_config(alembic_ini: Path, database_url: str) -> Config:
    """A Config for a service's migrations against ``database_url``."""
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(alembic_ini: Path, database_url: str, revision: str = "head") -> None:
    """``alembic upgrade`` (call from a thread when an event loop is running)."""
    if database_url.startswith("sqlite"):
        private_sqlite_file(database_url)
    command.upgrade(alembic_config(alembic_ini, database_url), revision)


def downgrade(alembic_ini: Path, database_url: str, revision: str = "base") -> None:
    """``alembic downgrade``."""
    command.downgrade(alembic_config(alembic_ini, database_url), revision)


def _run(connection: Connection, metadata: MetaData) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    if not is_sqlite:
        # Never queue behind a long transaction and block the service's traffic (alphagov). A
        # session setting: committed here, it holds for every migration, and Alembic begins each
        # migration's transaction itself (transaction_per_migration), which an index built
        # CONCURRENTLY needs (``create_index_concurrently``).
        connection.exec_driver_sql("SET lock_timeout = '10s'")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_INDEX_STATE = text(
    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :name AND n.nspname = current_schema()"
)


def _index_state(name: str) -> bool | None:
    """True for a valid index of that name, False for one a failed concurrent build left behind
    (INVALID), None for none."""
    return op.get_bind().execute(_INDEX_STATE, {"name": name}).scalar()


def _alone_in_its_migration(index_name: str) -> None:
    """Refuse a concurrent index in a migration that wrote anything before it: the autocommit
    block would commit those writes without the revision, and a build that then fails (the
    lock_timeout behind a long transaction) would leave a migration no run can complete (its first
    steps done, its revision not). Its transaction has no id until it writes."""
    wrote = op.get_bind().execute(text("SELECT txid_current_if_assigned()")).scalar()
    if wrote is not None:
        raise RuntimeError(
            f"{index_name}: an index built or dropped concurrently goes in a migration of its own "
            "(only concurrent index operations), not after other steps"
        )


def create_index_concurrently(
    index_name: str, table_name: str, columns: Sequence[Any], **kw: Any
) -> None:
    """``op.create_index`` for a table that already holds data: on PostgreSQL it never blocks writes.

    A plain ``CREATE INDEX`` holds a SHARE lock on the table while it reads the whole table, and
    while it waits for that lock behind an open write transaction every later writer queues behind
    it: submissions stop for as long as the wait and the build last. ``CREATE INDEX CONCURRENTLY``
    takes SHARE UPDATE EXCLUSIVE, which writers do not conflict with. It cannot run in a
    transaction, so it runs in an autocommit block, in a migration of its own (concurrent index
    operations only; refused after any other step, which the block would commit without the
    revision). A concurrent build that failed (the
    lock_timeout, a cancelled Job) leaves an INVALID index of that name: it is dropped and built
    again, and an index already built and valid is kept, so a Job run again completes. SQLite
    (one writer, no concurrent build): a plain ``CREATE INDEX``.
    """
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(index_name, table_name, list(columns), **kw)
        return
    _alone_in_its_migration(index_name)
    with op.get_context().autocommit_block():
        state = _index_state(index_name)
        if state:
            return
        if state is False:
            op.drop_index(index_name, table_name=table_name, postgresql_concurrently=True)
        op.create_index(index_name, table_name, list(columns), postgresql_concurrently=True, **kw)


def drop_index_concurrently(index_name: str, table_name: str) -> None:
    """``op.drop_index`` that, on PostgreSQL, never queues writers behind it: a plain ``DROP
    INDEX`` waits for an ACCESS EXCLUSIVE lock on the table, and every reader and writer after it
    waits too. An autocommit block, as ``create_index_concurrently``."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(index_name, table_name=table_name)
        return
    _alone_in_its_migration(index_name)
    with op.get_context().autocommit_block():
        if _index_state(index_name) is not None:
            op.drop_index(index_name, table_name=table_name, postgresql_concurrently=True)


def run_env(metadata: MetaData, *, default_url: Callable[[], str]) -> None:
    """Body of a service's ``migrations/env.py``: online migrations on the async engine.

    The URL comes from the caller (tests, the service's own start-up) or else from the service's
    settings, so that ``alembic upgrade head`` in a service folder migrates what the service uses.
    """
    url = context.config.attributes.get("database_url") or default_url()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(_run, metadata)
            await connection.commit()
        await engine.dispose()

    asyncio.run(main())


# ``python -m govshared.migrate <alembic.ini>``: upgrade to head the database named by
# GOVSHARED_MIGRATE_URL (an environment variable, not an argument: a password in it would show in
# the process list); what a service that migrates as it starts runs (``govshared.app``).
if __name__ == "__main__":
    import os
    import sys

    upgrade(Path(sys.argv[1]), os.environ["GOVSHARED_MIGRATE_URL"])
