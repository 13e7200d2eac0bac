"""Readiness: a database behind the code is not ready; at head or ahead (a roll-out) it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from govshared.app import Migrations, _at_head, known_migrations, upgrade_apart
from govshared.db import make_engine
from govshared.testing import BACKENDS, drop_postgres_database, make_database

ROOT = Path(__file__).resolve().parents[2]


def test_behind_head_and_ahead() -> None:
    migrations = Migrations(head="c", older=frozenset({"a", "b"}))
    assert migrations.behind(None)
    assert migrations.behind("b")
    assert not migrations.behind("c")
    assert not migrations.behind("d-from-a-newer-release")


@pytest.mark.parametrize("service", ["approval", "license", "notify"])
def test_known_migrations_agree_with_alembic(service: str) -> None:
    """The head and older revisions read from the version files without running them are
    Alembic's own (which imports every migration to know them)."""
    alembic_ini = ROOT / "services" / service / "alembic.ini"
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    every = {r.revision for r in script.walk_revisions()}
    assert head is not None and len(every) > 1
    assert known_migrations(alembic_ini) == Migrations(head=head, older=frozenset(every - {head}))


def test_two_heads_are_refused(tmp_path: Path) -> None:
    """A merge forgotten (two branches from one revision) fails at start, as Alembic did."""
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision: str = "b"\ndown_revision = "a"\n')
    (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    with pytest.raises(ValueError, match="more than one migration head"):
        known_migrations(tmp_path / "alembic.ini")
    (versions / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert known_migrations(tmp_path / "alembic.ini") == Migrations(
        head="d", older=frozenset({"a", "b", "c"})
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrating_at_start_happens_in_a_child_and_reaches_head(
    backend: str, tmp_path: Path
) -> None:
    """``migrate_on_start`` migrates in a child process: the database ends at head, and a failed
    migration fails the start."""
    alembic_ini = ROOT / "services" / "notify" / "alembic.ini"
    url = await make_database(backend, prefix="migrate_apart", directory=tmp_path)
    try:
        engine = make_engine(url)
        try:
            assert not await _at_head(engine, alembic_ini, url)  # fresh: migrate
            await upgrade_apart(alembic_ini, url)
            assert await _at_head(engine, alembic_ini, url)  # a restart: no child
            async with engine.connect() as conn:
                revision = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one()
        finally:
            await engine.dispose()
        assert revision == known_migrations(alembic_ini).head
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)
    with pytest.raises(RuntimeError, match="migrating notify failed"):
        await upgrade_apart(alembic_ini, "postgresql+asyncpg://nobody@127.0.0.1:9/none")
