"""A database that cannot be reached is a 503 ``database_unavailable`` with Retry-After, the
connection kept; a connection lost under a driver statement never goes back to the pool."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from govshared.app import health_router, known_migrations
from govshared.db import (
    REQUEST_TRANSACTION,
    AutoCommitRoute,
    DatabaseUnreachable,
    _replace_closed,
    get_session,
    is_database_outage,
    make_engine,
    make_sessionmaker,
)
from govshared.migrate import upgrade
from govshared.problems import install_problem_handlers
from govshared.settings import CommonSettings
from govshared.sql import NOT_SENT, DriverStatement
from govshared.sqlbatch import execute_insert, inserts_together
from govshared.testing import (
    BACKENDS,
    cut_off_postgres_database,
    drop_postgres_database,
    make_database,
    problem,
)

metadata = MetaData()
notes = Table("notes", metadata, Column("id", String(40), primary_key=True))
BY_ID = DriverStatement(select(notes.c.id).where(notes.c.id == bindparam("id")))
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "services" / "notify" / "alembic.ini"


class _Settings(CommonSettings):
    def default_db_name(self) -> str:
        return "unused.db"


def _app(engine: AsyncEngine, data_dir: Path) -> FastAPI:
    """Two routes on the database, as the services write them, and /readyz."""
    app = FastAPI()
    install_problem_handlers(app)
    router = APIRouter(route_class=AutoCommitRoute)

    @router.post("/notes", status_code=201)
    async def add(session: AsyncSession = Depends(get_session)) -> dict[str, str]:
        note = str(uuid.uuid4())
        async with inserts_together(session, last=True):
            await execute_insert(session, insert(notes), {"id": note})
        return {"id": note}

    @router.get("/notes")
    async def count(session: AsyncSession = Depends(get_session)) -> dict[str, int]:
        return {"count": int(await session.scalar(select(func.count()).select_from(notes)) or 0)}

    app.include_router(router)
    app.include_router(health_router(migrations=known_migrations(ALEMBIC_INI)))
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.settings = _Settings(data_dir=data_dir, db_retry_after_seconds=7)
    return app


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    url = await make_database(request.param, prefix="outage_test", directory=tmp_path)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    yield url
    if request.param == "postgresql":
        await cut_off_postgres_database(url, down=False)
        await drop_postgres_database(url)


def _assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "7"
    body = problem(response)
    assert body["code"] == "database_unavailable"
    assert body["title"] and body["title_en"]


async def _unreachable(url: str, tmp_path: Path) -> tuple[AsyncEngine, Any]:
    """An engine on the database, and how to cut it off and restore it (per backend)."""
    if url.startswith("postgresql"):
        return make_engine(url, timeout=2), lambda down: cut_off_postgres_database(url, down=down)
    # SQLite: the file's folder goes away and comes back (an unmounted volume).
    folder = tmp_path / "volume"
    folder.mkdir()
    path = folder / "db.sqlite"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    parked = tmp_path / "parked"

    async def cut(down: bool) -> None:
        await engine.dispose()  # an open SQLite connection would keep the file alive
        if down:
            folder.rename(parked)
        else:
            parked.rename(folder)

    return engine, cut


async def test_an_unreachable_database_is_a_503_problem_and_the_connection_stays(
    database: str, tmp_path: Path
) -> None:
    engine, cut = await _unreachable(database, tmp_path)
    app = _app(engine, tmp_path)
    # ASGITransport raises whatever the app lets escape: an error re-raised to the server (which
    # would drop the client's connection) fails the test.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/notes")).status_code == 201
        assert (await client.get("/readyz")).status_code in (200, 503)
        await cut(True)
        try:
            for _ in range(2):
                _assert_database_unavailable(await client.post("/notes"))
                _assert_database_unavailable(await client.get("/notes"))
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            assert ready.headers["retry-after"] == "7"
            assert problem(ready)["code"] == "not_ready"
            assert problem(ready)["check"] == "database"
        finally:
            await cut(False)
        assert (await client.post("/notes")).status_code == 201
        assert (await client.get("/notes")).json() == {"count": 2}
    await engine.dispose()


class _BlackHole:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL that, once ``cut``, forwards nothing more
    and closes nothing: a network partition, where no error ever arrives."""

    def __init__(self, target: str) -> None:
        url = make_url(target)
        self._upstream = (url.host or "127.0.0.1", url.port or 5432)
        self._target = url
        self.cut = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self.cut.is_set():
                    await asyncio.Event().wait()  # swallowed: never forwarded, never answered
                writer.write(data)
                await writer.drain()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut.is_set():
            await asyncio.Event().wait()  # a connect that never completes its handshake
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers += [writer, up_writer]
        for task in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            started = asyncio.create_task(task)
            self._tasks.add(started)
            started.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return self._target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    async def heal(self) -> None:
        """The network is back: the connections the partition held are reset (as a peer that
        restarted would), new ones go through."""
        self.cut.clear()
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await asyncio.sleep(0.1)

    async def __aexit__(self, *_exc: object) -> None:
        await self.heal()
        assert self._server is not None
        self._server.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_partitioned_database_is_a_503_within_the_statement_timeout(
    backend: str, tmp_path: Path
) -> None:
    """A connection cut without a goodbye gives no error: without a statement timeout the request
    waited for the kernel's TCP timeout (a quarter of an hour). It answers 503 within about two
    statement timeouts (the statement, then the rollback of its transaction), and the service
    recovers once the network does."""
    url = await make_database(backend, prefix="outage_partition", directory=tmp_path)
    try:
        setup = make_engine(url)
        async with setup.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await setup.dispose()
        hole = _BlackHole(url)
        async with hole as through:
            engine = make_engine(through, timeout=1.0, statement_timeout=1.0)
            app = _app(engine, tmp_path)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.post("/notes")).status_code == 201
                hole.cut.set()
                for _ in range(2):
                    started = time.monotonic()
                    async with asyncio.timeout(15):  # without the statement timeout: for ever
                        _assert_database_unavailable(await client.post("/notes"))
                    assert time.monotonic() - started < 5.0
                await hole.heal()
                assert (await client.post("/notes")).status_code == 201
            await engine.dispose()
    finally:
        await drop_postgres_database(url)


async def test_a_not_migrated_database_is_not_ready(database: str, tmp_path: Path) -> None:
    engine = make_engine(database)
    app = _app(engine, tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ready = await c.get("/readyz")
    await engine.dispose()
    assert ready.status_code == 503
    body = problem(ready)
    assert (body["code"], body["check"]) == ("not_ready", "database")  # no alembic_version


async def test_a_database_behind_the_code_is_not_ready_until_migrated(
    database: str, tmp_path: Path
) -> None:
    """Readiness names the revision the database is at and the head the code expects."""
    migrations = known_migrations(ALEMBIC_INI)
    # The revision just before the head, as Alembic's own script directory says.
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    head = ScriptDirectory.from_config(config).get_revision(migrations.head)
    assert head is not None and isinstance(head.down_revision, str)
    older = head.down_revision
    assert older in migrations.older
    await asyncio.to_thread(upgrade, ALEMBIC_INI, database, older)
    engine = make_engine(database)
    app = _app(engine, tmp_path)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            behind = await client.get("/readyz")
            assert behind.status_code == 503
            body = problem(behind)
            assert (body["code"], body["check"]) == ("not_ready", "migrations")
            assert (body["revision"], body["expected"]) == (older, migrations.head)
            await asyncio.to_thread(upgrade, ALEMBIC_INI, database)
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "revision": migrations.head}
    finally:
        await engine.dispose()


async def test_a_failed_statements_values_stay_out_of_its_error(database: str) -> None:
    """An error's text is what the logs keep (the problem handlers log it): the statement's values,
    here an identity number, are not in it, on either database."""
    engine = make_engine(database)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(notes), [{"id": "110101199003077777"}])
        with pytest.raises(IntegrityError) as failed:
            async with engine.begin() as conn:
                await conn.execute(insert(notes), [{"id": "110101199003077777"}])
    finally:
        await engine.dispose()
    assert "notes" in str(failed.value)  # the statement, to find the bug by
    assert "110101199003077777" not in str(failed.value)


def test_what_counts_as_an_outage() -> None:
    locked = OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))
    assert is_database_outage(locked)
    no_table = OperationalError("SELECT …", {}, sqlite3.OperationalError("no such table: x"))
    assert not is_database_outage(no_table)
    assert not is_database_outage(IntegrityError("INSERT …", {}, Exception("duplicate key")))
    invalidated = DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_database_outage(invalidated)
    assert is_database_outage(PoolTimeout("QueuePool limit reached"))
    assert is_database_outage(DatabaseUnreachable("ConnectionRefusedError"))
    assert not is_database_outage(ValueError("bad input"))
    assert not is_database_outage(OSError("disk full"))


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[str]:
    url = await make_database("postgresql", prefix="outage_driver", directory=tmp_path)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    yield url
    await drop_postgres_database(url)


async def _kill_backends(url: str) -> None:
    await cut_off_postgres_database(url, down=True)
    await cut_off_postgres_database(url, down=False)
    await asyncio.sleep(0.2)  # the clients read the server's goodbye


async def test_a_driver_statement_invalidates_its_lost_connection(postgres: str) -> None:
    """What SQLAlchemy does for its own statements: the dead connection and its pool are
    invalidated, so that the next session gets a live one instead of the same dead one."""
    engine = make_engine(postgres, pool_size=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as warm:
        await BY_ID.first(warm, {"id": "x"})
    async with sessions() as session:
        await session.connection()
        await _kill_backends(postgres)
        with pytest.raises(DBAPIError) as raised:
            await BY_ID.first(session, {"id": "x"})
        assert raised.value.connection_invalidated
        assert is_database_outage(raised.value)
        assert getattr(raised.value, NOT_SENT, False)  # it found the connection closed
    for _ in range(3):  # every pooled connection: none dead
        async with sessions() as session:
            assert await BY_ID.first(session, {"id": "x"}) is None
    await engine.dispose()


async def test_a_lone_statement_found_dead_is_sent_once_on_a_fresh_connection(
    postgres: str,
) -> None:
    engine = make_engine(postgres, pool_size=1)
    # Without the check at checkout the pool hands out the dead connection: the statement finds
    # it closed before anything is sent, and goes once more on another.
    event.remove(engine.sync_engine.pool, "checkout", _replace_closed)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await BY_ID.first(session, {"id": "warm"})
    await _kill_backends(postgres)
    note = str(uuid.uuid4())
    async with sessions() as session:
        session.info[REQUEST_TRANSACTION] = True
        async with inserts_together(session, last=True):
            await execute_insert(session, insert(notes), {"id": note})
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(notes.c.id == note)) == 1
    await engine.dispose()


async def test_connections_a_burst_opened_are_kept_for_the_next(postgres: str) -> None:
    """A load just above the pool: SQLAlchemy's overflow closed each connection it had opened as it
    came back, and the next burst started PostgreSQL backends again (``make bench`` saw 30 a
    second, the whole pool replaced every few seconds). What a burst opened is kept."""
    engine = make_engine(postgres, pool_size=2)  # and 1 more in a burst

    async def burst() -> set[int]:
        connections = [await engine.connect() for _ in range(3)]
        try:
            return {int(await c.scalar(text("SELECT pg_backend_pid()"))) for c in connections}
        finally:
            for connection in connections:
                await connection.close()

    first = await burst()
    assert len(first) == 3
    assert await burst() == first  # the same backends: none started again
    await engine.dispose()


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    postgres: str,
) -> None:
    engine = make_engine(postgres, pool_size=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await BY_ID.first(session, {"id": "warm"})
    await _kill_backends(postgres)
    async with sessions() as session:  # no error: the closed one was never handed out
        assert await BY_ID.first(session, {"id": "x"}) is None
    await engine.dispose()
