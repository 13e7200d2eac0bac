"""Test plumbing shared by the services' suites: real databases, keys and tokens.

Tests run against a real PostgreSQL (``TEST_DATABASE_URL``, default the local server) and against
SQLite. PostgreSQL being unreachable is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import httpx
from pydantic import ValidationError
from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from govshared.auth import (
    DEFAULT_SERVICE_ISSUER,
    DEV_IDP_KEY,
    DEV_SERVICE_KEY,
    Role,
    TokenVerifier,
    ensure_dev_keypair,
    load_private_key,
    load_verifier,
    mint_token,
)
from govshared.events import EVENT_DATA_SCHEMAS, CloudEvent
from govshared.jwks import service_audiences, subject_of_service
from govshared.uscc import random_uscc as random_uscc  # the tests' name for it

if TYPE_CHECKING:
    import pytest

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def admin_url() -> str:
    """The PostgreSQL server the tests create their databases on."""
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


async def create_postgres_database(prefix: str, *, icu_locale: str | None = None) -> str:
    """Create a fresh, uniquely named database and return its async URL (fails loudly); with
    ``icu_locale`` (``zh-Hans-CN``) its collation is that ICU locale's, as a deployment on a
    Chinese locale has."""
    base = make_url(admin_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is required for the tests and is not reachable at {base!r}: {exc}. "
            "Start it or set TEST_DATABASE_URL."
        ) from exc
    locale = (
        f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'" if icu_locale else ""
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{locale}')
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database``."""
    target = make_url(url)
    base = make_url(admin_url())
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def cut_off_postgres_database(url: str, *, down: bool) -> None:
    """Make a database unreachable (``down``: new connections refused, every open one terminated,
    as in a failover or a network cut) or reachable again."""
    name = make_url(url).database
    base = make_url(admin_url())
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not down).lower()}')
        if down:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
    finally:
        await conn.close()


async def make_database(backend: str, *, prefix: str, directory: Path) -> str:
    """A fresh empty database of the given backend."""
    if backend == "postgresql":
        return await create_postgres_database(prefix)
    path = directory / f"{prefix}_{uuid.uuid4().hex[:8]}.db"
    return f"sqlite+aiosqlite:///{path}"


@contextlib.asynccontextmanager
async def migrated_database(
    backend: str, *, prefix: str, directory: Path, alembic_ini: Path
) -> AsyncIterator[str]:
    """A fresh database of the backend migrated to head with Alembic (never ``create_all``);
    a PostgreSQL one is dropped afterwards."""
    from govshared.migrate import upgrade

    url = await make_database(backend, prefix=prefix, directory=directory)
    try:
        await asyncio.to_thread(upgrade, alembic_ini, url)
        yield url
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)


T = TypeVar("T")


class PerWorker:
    """What a test worker makes once per key, on first use, and keeps to the end of its session
    (closed last made, first closed).

    A service's database and running app are made once per backend this way. As session fixtures
    parametrised by backend they were torn down and made again whenever the next test had the
    other backend: under pytest-xdist's ``--dist loadfile`` at nearly every file, twice a file.
    """

    def __init__(self) -> None:
        self._values: dict[object, Any] = {}
        self._stack = contextlib.AsyncExitStack()

    async def get(self, key: object, make: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """The value of ``key``, entering ``make()`` the first time."""
        if key not in self._values:
            self._values[key] = await self._stack.enter_async_context(make())
        value: T = self._values[key]
        return value

    async def aclose(self) -> None:
        """Leave everything entered, in reverse order."""
        await self._stack.aclose()
        self._values.clear()


class CleanTables:
    """A service's database brought back, after each test, to what its start-up left there.

    Each test starts on the same tables whatever ran before it on the worker (STYLE §10: tests
    isolated per test). Tables that start-up left empty are emptied with ``DELETE`` (not ``DROP``
    or ``TRUNCATE``: on tables of a few rows a ``DELETE`` is the cheaper). Tables it filled (the
    catalogue, the calendar, what migrations seed: the seed) are copied then, and triggers note
    in ``_test_seed_touched`` every statement that writes to them: only a seed table a test
    wrote to (and the seed tables that refer to it) is written back from the copy, so that the
    9,000 calendar days are not compared or copied after every test.

    (Table names in the SQL below are the database's own, read from its catalogue.)
    """

    MARKS = "_test_seed_touched"

    def __init__(
        self,
        engine: AsyncEngine,
        tables: list[str],
        seed: dict[str, Any],  # PostgreSQL: the rows as JSON; SQLite: as tuples
        referrers: dict[str, set[str]],
    ) -> None:
        self._engine = engine
        self._tables = tables  # parents before children
        self._seed = seed
        self._referrers = referrers  # table -> the tables whose foreign keys name it

    @classmethod
    async def after_start(cls, engine: AsyncEngine) -> CleanTables:
        """Copy the seed rows and set the triggers, once the app's lifespan has loaded them."""
        async with engine.begin() as conn:
            tables, referrers = await conn.run_sync(_tables_parents_first)
            postgres = conn.dialect.name == "postgresql"
            seed: dict[str, Any] = {}
            for table in tables:
                if postgres:  # as JSON, which json_populate_recordset reads back type for type
                    copy = f'SELECT json_agg(t)::text FROM "{table}" AS t'  # noqa: S608
                    rows = (await conn.exec_driver_sql(copy)).scalar_one()
                else:  # SQLite's values as stored
                    rows = [
                        tuple(r) for r in await conn.exec_driver_sql(_sql("SELECT * FROM", table))
                    ]
                if rows:
                    seed[table] = rows
            for statement in _mark_writes(cls.MARKS, list(seed), postgres=postgres):
                await conn.exec_driver_sql(statement)
        return cls(engine, tables, seed, referrers)

    async def reset(self) -> None:
        """Empty every table start-up left empty; write back the seed tables a test wrote to."""
        async with self._engine.begin() as conn:
            # One round trip: which seed tables were written to, which other tables hold rows.
            survey: Any = await conn.exec_driver_sql(self._survey)
            found = [(str(kind), str(name)) for kind, name in survey]
            filled = {name for kind, name in found if kind == "rows"}
            restore = {name for kind, name in found if kind == "mark"}
            while grown := {r for t in restore for r in self._referrers[t] if r in self._seed}:
                if grown <= restore:
                    break
                restore |= grown
            for table in reversed(self._tables):
                if table in filled or table in restore:
                    await conn.exec_driver_sql(_sql("DELETE FROM", table))
            for table in self._tables:
                if table in restore:
                    rows = self._seed[table]
                    if conn.dialect.name == "postgresql":
                        source = f'SELECT * FROM json_populate_recordset(NULL::"{table}", $1::json)'  # noqa: S608
                        await conn.exec_driver_sql(_sql("INSERT INTO", table, source), (rows,))
                    else:
                        values = ", ".join("?" for _ in rows[0])
                        insert = _sql("INSERT INTO", table, f"VALUES ({values})")
                        await conn.exec_driver_sql(insert, rows)
            if restore:
                await conn.exec_driver_sql(_sql("DELETE FROM", self.MARKS))

    @property
    def _survey(self) -> str:
        parts = [_sql("SELECT DISTINCT 'mark', name FROM", self.MARKS)]
        parts += [
            f"SELECT 'rows', '{t}' WHERE EXISTS ({_sql('SELECT 1 FROM', t)})"
            for t in self._tables
            if t not in self._seed
        ]
        return " UNION ALL ".join(parts)


@contextlib.asynccontextmanager
async def with_clean_tables(
    running: AbstractAsyncContextManager[Any],
) -> AsyncIterator[tuple[Any, CleanTables]]:
    """A running app (``running`` entered) and its ``CleanTables``, taken once its lifespan ran."""
    async with running as app:
        yield app, await CleanTables.after_start(app.state.engine)


def _sql(verb: str, table: str, rest: str = "") -> str:
    return f'{verb} "{table}" {rest}'


def _tables_parents_first(conn: Connection) -> tuple[list[str], dict[str, set[str]]]:
    """The database's tables (Alembic's own left out), each after those its foreign keys name;
    and for each, the tables that name it."""
    inspector = inspect(conn)
    order = inspector.get_sorted_table_and_fkc_names()
    tables = [name for name, _ in order if name is not None and name != "alembic_version"]
    referrers: dict[str, set[str]] = {name: set() for name in tables}
    for name in tables:
        for key in inspector.get_foreign_keys(name):
            referrers.setdefault(key["referred_table"], set()).add(name)
    return tables, referrers


def _mark_writes(marks: str, tables: list[str], *, postgres: bool) -> list[str]:
    """DDL of the table of marks and of the triggers that fill it on every write to ``tables``."""
    if postgres:
        return [
            f'CREATE TABLE "{marks}" (name text NOT NULL)',
            f"""CREATE FUNCTION "{marks}"() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO "{marks}" VALUES (TG_TABLE_NAME); RETURN NULL; END $$""",  # noqa: S608
            *(
                f'CREATE TRIGGER "{marks}" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{t}" '
                f'FOR EACH STATEMENT EXECUTE FUNCTION "{marks}"()'
                for t in tables
            ),
        ]
    return [
        f'CREATE TABLE "{marks}" (name TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID',
        *(
            f'CREATE TRIGGER "{marks}_{t}_{op}" AFTER {op} ON "{t}" BEGIN '
            + _sql("INSERT OR IGNORE INTO", marks, f"VALUES ('{t}'); END")
            for t in tables
            for op in ("INSERT", "UPDATE", "DELETE")
        ),
    ]


class Tokens:
    """Mints test tokens with key pairs of the test's own, each used for the roles it is trusted
    for: the identity provider's pair for enterprises and staff, the services' pair for services."""

    def __init__(self, directory: Path) -> None:
        private, public = ensure_dev_keypair(directory, DEV_IDP_KEY)
        service_private, service_public = ensure_dev_keypair(directory, DEV_SERVICE_KEY)
        self.private_key_file = str(private)
        self.public_key_file = str(public)
        self.service_private_key_file = str(service_private)
        self.service_public_key_file = str(service_public)
        # Loaded once: loading a PEM checks the RSA key, which costs more than signing a token.
        self._private = load_private_key(private.read_bytes())
        self._service_private = load_private_key(service_private.read_bytes())

    def settings(self) -> dict[str, str]:
        """The key settings of a service under test (CommonSettings field names)."""
        return {
            "jwt_public_key_file": self.public_key_file,
            "service_private_key_file": self.service_private_key_file,
            "service_jwt_keys_file": self.service_public_key_file,
        }

    def verifier(self) -> TokenVerifier:
        """A verifier trusting these keys as a service under test does."""
        return load_verifier(
            public_key_file=self.public_key_file,
            jwks_file=None,
            jwks_url=None,
            issuer=None,
            audience=None,
            service_keys_file=self.service_public_key_file,
        )

    def environment(self, prefix: str) -> dict[str, str]:
        """The same settings as environment variables of a service process."""
        return {f"{prefix}{name.upper()}": value for name, value in self.settings().items()}

    def enterprise(self, uscc: str, name: str = "测试企业有限公司") -> dict[str, str]:
        """Authorization header of an enterprise."""
        return self.header(Role.ENTERPRISE, uscc=uscc, name=name, subject=f"ent:{uscc}")

    def staff(self, role: Role, jurisdiction: str = "310000") -> dict[str, str]:
        """Authorization header of a member of staff."""
        return self.header(role, jurisdiction=jurisdiction)

    def service(self, name: str = "tests", *, to: str | None = None) -> dict[str, str]:
        """Authorization header of a service (signed with the services' key), for a call to the
        service ``to`` (its ``aud``); without it, a token every service of the suite accepts."""
        audience = service_audiences(to)
        return self.header(
            Role.SERVICE, subject=subject_of_service(name), name=name, audience=audience
        )

    def producer(self, events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Authorization header of the service whose relay posts these events: the one their
        ``source`` names (``/services/<name>``); a service may post only its own events."""
        sources = {str(event.get("source", "")) for event in events} or {"/services/approval"}
        assert len(sources) == 1, f"one producer a batch, not {sources}"
        return self.service(sources.pop().removeprefix("/services/"))

    def token(self, role: Role, **claims: Any) -> str:
        """A token for any role and claims, signed with the key trusted for that role."""
        if Role(role) is Role.SERVICE:
            claims.setdefault("issuer", DEFAULT_SERVICE_ISSUER)
            # Sent to any of the suite's services unless the test names its audience.
            claims.setdefault("audience", service_audiences())
            return mint_token(self._service_private, role=role, **claims)
        return mint_token(self._private, role=role, **claims)

    def header(self, role: Role, **claims: Any) -> dict[str, str]:
        """Authorization header for any role and claims."""
        return {"Authorization": f"Bearer {self.token(role, **claims)}"}


def problem(response: httpx.Response) -> dict[str, object]:
    """The problem+json body of an error response (asserting its media type and shape)."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, object] = json.loads(response.content)
    assert {"type", "title", "status", "code", "title_en"} <= body.keys(), body
    assert body["status"] == response.status_code
    return body


# Real-browser checks of the public pages: Debian's Chromium, headless, against a loopback server.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_binary() -> str:
    """The system Chromium; the test fails (never skips) without it."""
    import pytest

    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "Chromium is not installed: `make test` installs it (tools/test-tools.sh), "
        "or apt-get install -y chromium"
    )


@contextlib.asynccontextmanager
async def serve_on_loopback(app: Any) -> AsyncIterator[str]:
    """An app whose lifespan already runs, served by uvicorn on a free loopback port; its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def dump_dom(url: str, *, settle_ms: int = 0) -> str:
    """The page's DOM after Chromium loaded it (and, with ``settle_ms``, after the page's own
    scripts and requests had that much virtual time: for pages that render what they fetch)."""
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_binary(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            *([f"--virtual-time-budget={settle_ms}"] if settle_ms else []),
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


def blank_pdf() -> bytes:
    """A real one-page PDF, as an upload must be (it is parsed, not only sniffed)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def check_event_contract(event: CloudEvent) -> None:
    """Fail (AssertionError) unless an event matches its type's data model
    (``govshared.events.EVENT_DATA``): it parses, and parsed it dumps back exactly the data sent, so
    no key of the contract is lost, re-typed or re-spelt. A type outside the suite's vocabulary (a
    test's own) passes. Producers build event data without validating it again (the hot path's
    cost), so the tests check it here instead (``watch_event_contracts``)."""
    model = EVENT_DATA_SCHEMAS.get(event.type)
    if model is None:
        return
    try:
        parsed = model.model_validate(event.data)
    except ValidationError as exc:
        raise AssertionError(f"{event.type}: its data does not match its model: {exc}") from exc
    again = parsed.model_dump(mode="json")
    assert again == event.data, (
        f"{event.type}: its model does not dump back the data sent:\n"
        f"sent {json.dumps(event.data, ensure_ascii=False, sort_keys=True, default=str)}\n"
        f"back {json.dumps(again, ensure_ascii=False, sort_keys=True, default=str)}"
    )


def watch_event_contracts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check every event a test puts in an outbox against its contract (an autouse fixture of each
    service's tests calls this)."""
    from govshared.outbox import OutboxWriter

    add, add_many = OutboxWriter.add, OutboxWriter.add_many

    async def checked_add(self: OutboxWriter, session: Any, event: CloudEvent) -> None:
        check_event_contract(event)
        await add(self, session, event)

    async def checked_add_many(
        self: OutboxWriter, session: Any, events: Sequence[CloudEvent]
    ) -> None:
        for event in events:
            check_event_contract(event)
        await add_many(self, session, events)

    monkeypatch.setattr(OutboxWriter, "add", checked_add)
    monkeypatch.setattr(OutboxWriter, "add_many", checked_add_many)
