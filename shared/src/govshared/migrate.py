"""Alembic plumbing shared by the services' ``migrations/env.py`` and by tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
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
        # Never queue behind a long transaction and block the service's traffic (alphagov).
        connection.exec_driver_sql("SET lock_timeout = '10s'")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


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
