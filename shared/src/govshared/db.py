"""Async engines and sessions, one transaction per request, on PostgreSQL or SQLite by URL alone."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from govshared.files import touch_private

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored and returned in UTC, aware, on PostgreSQL and SQLite alike.

    SQLite has no time zone type and hands back naive values; normalising here keeps comparisons,
    hashes and API output identical on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC (naive values are taken as UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC) if dialect.name != "sqlite" else value
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC value."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_metadata() -> MetaData:
    """A MetaData with the suite's constraint naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


READ_ONLY = "suite_read_only"
# In ``session.info``: the session is a request's, committed by ``AutoCommitRoute`` when the
# endpoint succeeds (and only then); code deep in a service may rely on nothing else owning it.
REQUEST_TRANSACTION = "suite_request_transaction"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# In ``session.info``: ``govshared.sqlbatch.inserts_together(last=True)`` sent the request's statement
# alone on another connection, and it committed; the session may not begin anything after it.
SENT_ALONE = "suite_sent_alone"


# The request being handled in this task (set by ``AutoCommitRoute``), for the guard below.
_CURRENT_REQUEST: ContextVar[Request | None] = ContextVar("suite_current_request", default=None)


class TransactionOpenDuringCall(RuntimeError):
    """A call to another service (or any network call through the suite's clients, or to object
    storage, ``govshared.storage``) was made with the request's database transaction open: a
    programming error, never an outcome to handle.

    Waiting on the network with a transaction open holds a pooled connection, row locks on
    PostgreSQL and SQLite's write lock (``BEGIN IMMEDIATE``) for as long as the other side takes;
    gather remote facts first, end the read (``end_read``), then write (STYLE.md §3).
    """


def no_transaction_open(call: str) -> None:
    """Refuse a network call (``call`` names it) while the current request's session is in a
    transaction (``TransactionOpenDuringCall``); outside a request (workers) it does nothing."""
    request = _CURRENT_REQUEST.get()
    if request is None:
        return
    session: AsyncSession | None = getattr(request.state, "session", None)
    if session is not None and session.in_transaction():
        raise TransactionOpenDuringCall(
            f"{call}: the request's database transaction is open; end the read (end_read) "
            "before calling another service or the object storage"
        )


class SessionSentAlone(RuntimeError):
    """A request's session was used after ``inserts_together(last=True)`` sent its statement
    alone on another connection, committed: what followed would be in no transaction anyone
    commits (a programming error, never an outcome to handle)."""


def is_sqlite(url: str) -> bool:
    """True for an SQLite URL."""
    return url.startswith("sqlite")


class DatabaseUnreachable(Exception):
    """A new database connection was refused or did not come up in time (the network's error,
    not the database's: SQLAlchemy passes those through unwrapped)."""


# SQLite's errors that mean "not now" rather than "never": another writer held the lock past the
# busy timeout, or the file could not be opened or written.
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)


@lru_cache(maxsize=1)
def _asyncpg_outage_types() -> tuple[type[BaseException], ...]:
    """asyncpg's errors of a connection lost, refused or shut down.

    Asked only once asyncpg is loaded (``_is_outage_itself``): until then no error can be one
    of them, and a service on SQLite never loads it (~2 MB)."""
    from asyncpg import exceptions as pg

    return (
        pg.ConnectionDoesNotExistError,  # closed in the middle of an operation
        pg.PostgresConnectionError,  # class 08: connection exception
        pg.AdminShutdownError,  # pg_terminate_backend, a fast shutdown
        pg.CrashShutdownError,
        pg.CannotConnectNowError,  # starting up, in recovery
        pg.TooManyConnectionsError,  # max_connections or the database's CONNECTION LIMIT
    )


def _raised_in_driver(error: BaseException) -> bool:
    """Whether ``error`` was raised inside the database driver or SQLAlchemy (its traceback's
    innermost frames), not by the request's own code."""
    tb = error.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy", "aiosqlite")):
            return True
        tb = tb.tb_next
    return False


def _is_outage_itself(error: BaseException) -> bool:
    if isinstance(error, DatabaseUnreachable | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # refused, or no pooled connection free within the pool timeout
    if isinstance(error, TimeoutError) and _raised_in_driver(error):
        return True  # no answer within the statement timeout (``make_engine``): a partition
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True  # SQLAlchemy (or DriverStatement) saw the connection die
    if "asyncpg" in sys.modules and isinstance(error, _asyncpg_outage_types()):
        return True
    text = str(error).lower()
    module = type(error).__module__
    if module.startswith("asyncpg"):
        # A client-side "connection is closed", and a database that refuses new connections
        # (ALTER DATABASE … ALLOW_CONNECTIONS false, SQLSTATE 55000, is also used for other
        # states: only its wording says which).
        return "connection is closed" in text or "not currently accepting connections" in text
    if module == "sqlite3":
        return any(reason in text for reason in _SQLITE_UNAVAILABLE)
    return False


def is_database_outage(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be reached now (a lost or refused connection,
    a pool or connect timeout, SQLite locked past its busy timeout), not that the request is wrong.

    Follows SQLAlchemy's wrapping (``.orig``) and the driver's (``__cause__``) a few levels down.
    """
    seen: BaseException | None = error
    for _ in range(6):
        if seen is None:
            return False
        if _is_outage_itself(seen):
            return True
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return False


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file 0600 (its folder 0700) before SQLite does with the umask.

    SQLite gives its -wal and -shm files the database file's mode, so they follow. The database
    holds webhook secrets and applicants' data.
    """
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        touch_private(Path(database))


def make_engine(
    url: str,
    *,
    pool_size: int = 20,
    timeout: float = 5.0,
    statement_timeout: float = 30.0,
    echo: bool = False,
) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and ``BEGIN IMMEDIATE`` transactions.

    SQLite allows one writer. A deferred transaction that reads and then writes can fail with
    SQLITE_BUSY when another writer committed in between, whatever the busy timeout; taking the write
    lock at BEGIN makes every transaction wait its turn instead, and also serialises concurrent
    actions on one application the way a row lock does on PostgreSQL. Read-only sessions
    (``read_only_session``) begin deferred so that readers never hold the write lock.

    On PostgreSQL ``timeout`` bounds both opening a connection and waiting for a free one in the
    pool: past it the request answers 503 ``database_unavailable`` rather than hang. A pooled
    connection that the server closed while it sat idle (a restart, ``pg_terminate_backend``, a
    failover) is replaced as it is checked out (``_replace_closed``); one that dies in use is
    invalidated with the rest of the pool, as SQLAlchemy does on any disconnect.

    A connection cut without a goodbye (a network partition, a failover behind a proxy that keeps
    acknowledging) gives no error at all: a statement on it would wait for the kernel's TCP
    timeout, a quarter of an hour, holding the request and its pooled connection. So every
    statement waits for its answer at most ``statement_timeout`` seconds (asyncpg's
    ``command_timeout``; the request then answers 503 ``database_unavailable``, see
    ``is_database_outage``), and the server ends a session left idle inside a transaction for
    twice that, at least a minute (``idle_in_transaction_session_timeout``), so that the row locks
    of a client it lost are not held until its own TCP timeout. No transaction of the suite waits
    on anything but the database (``shared/tests/test_no_call_in_transaction.py``).
    """
    if is_sqlite(url):
        private_sqlite_file(url)
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"timeout": 30},
            json_serializer=json_text,
            json_deserializer=json_value,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            if connection.get_execution_options().get(READ_ONLY):
                connection.exec_driver_sql("BEGIN")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        # A statement's values (identity numbers, phone numbers, a webhook's secret) stay out of
        # every error's text, and so out of the logs (个人信息保护法 第五十一条: security measures).
        hide_parameters=True,
        # ``pool_size`` and half as many again, each opened when first needed and then kept: no
        # overflow. SQLAlchemy closes an overflow connection as it comes back to a full pool, so
        # a load just above the pool opened and closed connections without end: `make bench`
        # with 7 + 3 a worker saw 30 backends started a second (3.5% of keyed submissions), their
        # whole pool replaced every few seconds, each start costing PostgreSQL and the app more
        # CPU than a request and holding the requests that waited for it (the p99 tail). A
        # connection is closed when it is found dead or is recycled, as before.
        pool_size=pool_size + max(1, pool_size // 2),
        max_overflow=0,
        # No ping per checkout (with asyncpg a BEGIN, a ``;`` and a ROLLBACK: three round trips,
        # where a submission's whole work is one): ``_replace_closed`` catches what a ping would,
        # for a flag read (see deploy/README.md, Outages).
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=timeout,
        connect_args={
            "timeout": timeout,
            "command_timeout": statement_timeout,
            "server_settings": {
                "idle_in_transaction_session_timeout": str(
                    int(max(60.0, 2 * statement_timeout) * 1000)
                )
            },
        },
        json_serializer=json_text,
        json_deserializer=json_value,
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unreachable)
    event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
    return engine


def engine_from_settings(settings: Any, *, pool_size: int | None = None) -> AsyncEngine:
    """``make_engine`` as a service's settings describe it (``CommonSettings``: the URL, the
    pool's size unless ``pool_size`` (a worker's), the connect and statement timeouts), so that a
    web process and its workers cannot drift apart on them."""
    return make_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        timeout=settings.db_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds,
    )


def json_text(value: Any) -> str:
    """A JSON column's value as stored: compact, non-ASCII as it is (orjson, about a tenth of the
    standard library's CPU for a submission's form). Until 2026-12 it was the standard library's
    form (``", "`` separators, ``\\uXXXX`` escapes); both read back alike (``json_value``), and on
    PostgreSQL the column is ``json`` either way. What orjson refuses (an integer beyond 64 bits,
    a lone surrogate) gets the standard library's form, as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def json_value(text: str | bytes) -> Any:
    """A JSON column's stored text as a value (orjson; the standard library for what orjson
    refuses, such as an integer beyond 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _connect_or_unreachable(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Open a connection as SQLAlchemy would, naming a refused or timed-out one for what it is."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as error:
        raise DatabaseUnreachable(f"{type(error).__name__}: {error}") from error


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection whose socket the server has closed (the pool then opens another).

    asyncpg notices the server's goodbye while the connection idles in the pool, so this is a flag
    read, not a round trip: what ``pool_pre_ping`` would catch, for nothing. A connection cut
    without a goodbye (a network partition) is caught when it is used instead.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


class ServiceSession(Session):
    """The (sync) session class of the suite's sessionmakers (``make_sessionmaker``).

    The after-commit hooks listen on this class alone: any other SQLAlchemy session in the
    process (a library's, a tool's) is left alone, and a session of another sessionmaker that
    registers a hook is refused (``after_commit``) rather than silently never woken.
    """

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        """The engine, as usual; refused once the request's statement went alone (``SENT_ALONE``):
        every statement and connection of the session asks for it first."""
        if self.info.get(SENT_ALONE):
            raise SessionSentAlone(
                "this request's statement was sent alone and committed: nothing may follow it"
            )
        return super().get_bind(*args, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (responses are built after it), with the
    after-commit hooks (``ServiceSession``)."""
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=ServiceSession
    )


async def mark_read_only(session: AsyncSession) -> None:
    """Begin the session's transaction as a reader (deferred on SQLite; no effect on PostgreSQL)."""
    await session.connection(execution_options={READ_ONLY: True})


async def get_session(request: Request) -> AsyncSession:
    """The request's session; ``AutoCommitRoute`` commits it before the response is sent and
    closes it (every route that takes a session is an ``AutoCommitRoute``). One per request: a
    dependency that calls this directly gets the session the others get.

    Requests with a safe method read without taking SQLite's write lock. A plain dependency, not
    one with ``yield``: FastAPI wraps those in an exit stack and a cancel scope, which cost a
    request as much as the route's own statement.
    """
    opened: AsyncSession | None = getattr(request.state, "session", None)
    if opened is not None:
        return opened
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    session = sessionmaker()
    request.state.session = session
    session.info[REQUEST_TRANSACTION] = True
    if request.method in SAFE_METHODS:
        await mark_read_only(session)
    return session


AfterCommitHook = Callable[[Any], None]  # called with the (sync) session; the wakers ignore it


@event.listens_for(ServiceSession, "after_commit")
def run_after_commit_hooks(session: Session) -> None:
    """Run the hooks ``after_commit`` registered, once the transaction has committed.

    Every session of ``make_sessionmaker`` gets this, so request handlers and workers alike wake
    what they should without remembering to (the hooks only set events: nothing here touches the
    database).
    """
    for hook in session.info.pop("after_commit", []):
        hook(session)


@event.listens_for(ServiceSession, "after_rollback")
def _drop_after_commit_hooks(session: Session) -> None:
    """A rolled-back transaction wakes nobody."""
    session.info.pop("after_commit", None)


class AutoCommitRoute(APIRoute):
    """Commits the request's session after the endpoint succeeds and before the response goes out.

    FastAPI runs the code after ``yield`` in a dependency once the response has been sent, which is
    too late to report a failed commit to the client; so the commit lives here (Polar's pattern).
    A response with a 4xx/5xx status is never committed. After a successful commit the hooks
    registered with ``after_commit`` run (e.g. waking the outbox relay). A session the endpoint or a
    dependency raised from is closed here, and one whose commit or rollback failed: its connection
    goes back to the pool whatever happened.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler with the commit; the handler is planned once for the route
        (``govshared.routeplan``) when its dependencies allow, FastAPI's own otherwise."""
        handler = super().get_route_handler()
        if _ROUTE_PLAN is not None:
            handler = _ROUTE_PLAN(_effective_route(self), handler)

        async def commit_handler(request: Request) -> Response:
            current = _CURRENT_REQUEST.set(request)
            try:
                return await handle(request)
            finally:
                _CURRENT_REQUEST.reset(current)

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as error:
                await _close_request_session(request)
                if request.method not in SAFE_METHODS or not is_database_outage(error):
                    raise
                # A read lost its connection: it wrote nothing, so it is asked once more on a
                # fresh one (the pool has replaced the dead ones by now) before the 503.
                response = await _retry_read(handler, request)
            except BaseException:
                # Whatever a dependency or the endpoint raised, the session's connection goes back.
                await _close_request_session(request)
                raise
            session: AsyncSession | None = getattr(request.state, "session", None)
            if session is not None:
                try:
                    # A session that never began (a submission's lone autocommitted statement,
                    # say) has nothing to commit or roll back.
                    if session.in_transaction():
                        if response.status_code < 400:
                            await session.commit()
                        else:
                            await session.rollback()
                finally:
                    # Only a session still in a transaction (its commit or rollback failed) holds
                    # a connection to give back. One that committed, rolled back or never began
                    # holds none and is dropped with the request: closing it only emptied its
                    # identity map, about 60,000 instructions a request (make bench-instructions).
                    if session.in_transaction():
                        await session.close()
            return response

        return commit_handler


def _route_plan() -> tuple[Any, Any]:
    """``govshared.routeplan.planned_handler`` and FastAPI's context of the effective route, or
    (None, None) when a FastAPI release has moved an internal either leans on: then every route
    keeps FastAPI's own handler (slower, the same answers) instead of the service failing to
    start. ``shared/tests/test_routeplan.py`` imports the plan directly and fails first."""
    try:
        from fastapi.routing import _effective_route_context_var

        from govshared.routeplan import planned_handler
    except ImportError:  # pragma: no cover - a FastAPI other than the locked one
        return None, None
    return planned_handler, _effective_route_context_var


_ROUTE_PLAN, _EFFECTIVE_ROUTE = _route_plan()


def _effective_route(route: APIRoute) -> Any:
    """The route as FastAPI builds its handler: the route itself, or, for a route of an included
    router, the effective route of that inclusion (its full path, the router's dependencies)."""
    effective = _EFFECTIVE_ROUTE.get()
    if effective is not None and effective.original_route is route:
        return effective
    return route


async def _retry_read(
    handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request
) -> Response:
    """Run a safe request's handler again with a new session."""
    request.state.session = None
    try:
        return await handler(request)
    except BaseException:
        await _close_request_session(request)
        raise


async def _close_request_session(request: Request) -> None:
    session: AsyncSession | None = getattr(request.state, "session", None)
    if session is not None:
        request.state.session = None
        await session.close()


def after_commit(session: AsyncSession, hook: AfterCommitHook) -> None:
    """Run ``hook`` once the session's transaction has committed (at most once per hook; never
    if it rolls back)."""
    if not isinstance(session.sync_session, ServiceSession):
        raise TypeError("after_commit needs a session of govshared.db.make_sessionmaker")
    hooks: list[AfterCommitHook] = session.info.setdefault("after_commit", [])
    if hook not in hooks:
        hooks.append(hook)


async def end_read(session: AsyncSession) -> None:
    """End a transaction that has only read, before waiting on another service.

    A call to another service must not hold a connection, a PostgreSQL transaction or SQLite's write
    lock (``BEGIN IMMEDIATE``) while it waits; the next statement begins a new transaction. Refuses
    a session with pending changes: those belong to the request's one transaction.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("end_read on a session with pending changes")
    if session.in_transaction():
        await session.rollback()
