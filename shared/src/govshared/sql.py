"""Dialect helpers for the few statements that PostgreSQL and SQLite spell differently, and the
hot paths' statements sent straight to asyncpg (``DriverStatement``, ``inserts_together``).

Sending a statement straight to the driver leans on these SQLAlchemy internals, exactly (2.1;
``INTERNALS`` below, and ``shared/tests/test_sql.py`` holds the list against the code and against
the installed SQLAlchemy, so an upgrade that renames one fails there first):

- four of the asyncpg adapter (``AsyncAdapt_asyncpg_connection``): ``_execute_mutex`` (the lock
  every statement on the connection takes), ``_transaction`` (the transaction it has begun, None
  before the first statement), ``_start_transaction()`` (how it begins one) and
  ``_handle_exception()`` (asyncpg's error into the adapter's DB-API error); its asyncpg
  connection is the public ``driver_connection``;
- ``Connection._handle_dbapi_exception()``: the DB-API error into SQLAlchemy's exception, a lost
  connection invalidated with the rest of the pool, and ``_handle_dbapi_exception_noconnection()``,
  the same for a connection refused as the lone statement of ``inserts_together`` takes one;
- ``Insert._post_values_clause``: the ON CONFLICT clause, part of a batch's shape;
- ``SQLCompiler._result_columns``: the selected columns and their result processors.

``govshared.sqlcopy.copy_rows`` (COPY through asyncpg's ``copy_records_to_table``) takes the same adapter
internals through ``on_driver``, and the columns' public bind processors. Should any of them be
missing (or ``<P>SQL_ON_DRIVER=false``), every statement goes through ``session.execute`` instead,
``inserts_together`` runs each INSERT in the session's transaction and ``copy_rows`` is one
executemany INSERT: slower, not wrong (``driver_enabled``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, cast
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Dialect,
    Executable,
    Insert,
    Table,
    bindparam,
    literal_column,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

from govshared.db import (
    REQUEST_TRANSACTION,
    SENT_ALONE,
    SessionSentAlone,
    run_after_commit_hooks,
)

Row = dict[str, Any]
log = logging.getLogger(__name__)

# Every SQLAlchemy internal this module (and ``govshared.db``) relies on, by the object it is on.
INTERNALS: dict[str, tuple[str, ...]] = {
    "AsyncAdapt_asyncpg_connection": (
        "_execute_mutex",
        "_transaction",
        "_start_transaction",
        "_handle_exception",
    ),
    "Connection": ("_handle_dbapi_exception", "_handle_dbapi_exception_noconnection"),
    "Insert": ("_post_values_clause",),
    "SQLCompiler": ("_result_columns",),
}


class _Driver:
    """Whether statements go straight to asyncpg: the setting, and the internals found there."""

    enabled = True
    # Adapter classes seen, and whether they had every internal (checked once per class).
    checked: ClassVar[dict[type, bool]] = {}


def use_driver(enabled: bool) -> None:
    """The ``<P>SQL_ON_DRIVER`` setting: False sends every statement through ``session.execute``."""
    _Driver.enabled = enabled


def missing_internals(connection: AsyncConnection | Connection) -> list[str]:
    """The internals of ``INTERNALS`` that this PostgreSQL connection's SQLAlchemy lacks."""
    sync = _sync(connection)
    adapter = sync.connection.dbapi_connection
    holders: dict[str, Any] = {
        "AsyncAdapt_asyncpg_connection": adapter,
        "Connection": sync,
        "Insert": Insert,
        "SQLCompiler": SQLCompiler,
    }
    missing = [
        f"{owner}.{name}"
        for owner, names in INTERNALS.items()
        for name in names
        if owner != "SQLCompiler" and not hasattr(holders[owner], name)
    ]
    # An attribute set in __init__: looked for on a compiled statement.
    compiled = select(literal_column("1").label("one")).compile(dialect=connection.dialect)
    if not hasattr(compiled, "_result_columns"):
        missing.append("SQLCompiler._result_columns")
    if type(adapter).__name__ != "AsyncAdapt_asyncpg_connection":
        missing.append(f"AsyncAdapt_asyncpg_connection (found {type(adapter).__name__})")
    return missing


def _sync(connection: AsyncConnection | Connection) -> Connection:
    sync = connection.sync_connection if isinstance(connection, AsyncConnection) else connection
    assert sync is not None
    return sync


def driver_enabled(connection: AsyncConnection | Connection) -> bool:
    """True when statements may go straight to asyncpg on this connection: the setting allows it
    and SQLAlchemy still has every internal of ``INTERNALS`` (else a warning, once)."""
    if not _Driver.enabled:
        return False
    kind = type(_sync(connection).connection.dbapi_connection)
    found = _Driver.checked.get(kind)
    if found is None:
        missing = missing_internals(connection)
        found = _Driver.checked[kind] = not missing
        if missing:
            log.warning(
                "SQLAlchemy lacks internals govshared.sql relies on (%s): statements go through "
                "session.execute instead (slower, same result)",
                ", ".join(missing),
            )
    return found


def _engine(session: AsyncSession) -> Engine:
    """The engine the session runs on (its own bind, as the suite's sessionmakers give it)."""
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        return bind.sync_engine
    return session.get_bind().engine  # a session bound per mapper or to a connection


def dialect_name(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``."""
    return _engine(session).dialect.name


_DATABASES: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


def database_key(session: AsyncSession) -> str:
    """Which database the session works on, for process-wide caches shared by several databases
    (tests run many); rendered once per engine, as it sits on hot paths."""
    engine = _engine(session)
    key = _DATABASES.get(engine)
    if key is None:
        key = _DATABASES[engine] = engine.url.render_as_string(hide_password=True)
    return key


@lru_cache(maxsize=256)
def _insert_ignore(table: Table, index_elements: tuple[str, ...] | None, dialect: str) -> Insert:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    targets = list(index_elements) if index_elements is not None else None
    return insert_(table).on_conflict_do_nothing(index_elements=targets)


def insert_ignore(
    session: AsyncSession, table: Table, *, index_elements: list[str] | None = None
) -> Any:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` in the session's dialect (without
    ``index_elements``: a conflict on any unique constraint).

    On PostgreSQL a conflicting row that another transaction has not committed yet makes this wait
    for that transaction, then do nothing (or insert, if it rolled back): a safe claim. The
    statement is built once per table (statements are immutable; rows go beside them).
    """
    targets = tuple(index_elements) if index_elements is not None else None
    return _insert_ignore(table, targets, dialect_name(session))


_BATCH = "govshared.inserts_together"


class DriverStatement:
    """A statement of a hot path, built once with ``bindparam`` placeholders, run on the driver.

    On PostgreSQL it is compiled once (for an UPDATE without ``.values()``, once per set of columns
    its parameters set) and sent straight to the asyncpg connection of the session's transaction,
    beginning that transaction first if nothing has yet; measured with callgrind, a statement costs
    about 60K instructions that way against 200–280K through SQLAlchemy's execution layer, which a
    lifecycle action pays ten times. Errors come back as SQLAlchemy's (``IntegrityError`` and so
    on). On SQLite it is executed through the session as usual.

    Rows are mappings read by column name, their values through the columns' result processors
    as SQLAlchemy's own would be. What is given up, for these statements only, is SQLAlchemy's
    execution events (and so echo and statement instrumentation). It leans on SQLAlchemy's
    internals listed in ``INTERNALS`` (see the module's docstring); without them, or with the
    ``<P>SQL_ON_DRIVER=false`` setting, it runs through ``session.execute``: slower, same result.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, ...], _Compiled] = {}

    async def rows(self, session: AsyncSession, parameters: Row) -> list[Mapping[str, Any]]:
        """Every row the statement returns."""
        connection = await _driver_connection(session)
        if connection is None:
            result = await session.execute(self.statement, parameters)
            return cast("list[Mapping[str, Any]]", list(result.mappings().all()))
        compiled, records = await self._on_driver(connection, parameters, "fetch")
        return [compiled.row(record) for record in records]

    async def first(self, session: AsyncSession, parameters: Row) -> Mapping[str, Any] | None:
        """The first row, or None."""
        connection = await _driver_connection(session)
        if connection is None:
            result = await session.execute(self.statement, parameters)
            return cast("Mapping[str, Any] | None", result.mappings().first())
        compiled, record = await self._on_driver(connection, parameters, "fetchrow")
        return None if record is None else compiled.row(record)

    async def rowcount(self, session: AsyncSession, parameters: Row) -> int:
        """Run an UPDATE or DELETE; how many rows it changed."""
        connection = await _driver_connection(session)
        if connection is None:
            result = await session.execute(self.statement, parameters)
            return int(result.rowcount)  # type: ignore[attr-defined]
        _compiled, status = await self._on_driver(connection, parameters, "execute")
        return int(str(status).rsplit(" ", 1)[-1])

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        compiled = self._compiled.get(keys)
        if compiled is not None:
            return compiled
        done = cast(
            SQLCompiler,
            cast(ClauseElement, self.statement).compile(dialect=dialect, column_keys=list(keys)),
        )
        columns = getattr(done, "_result_columns", ())
        results = tuple(
            (c.keyname, c.type.dialect_impl(dialect).result_processor(dialect, None))
            for c in columns
        )
        names = tuple(done.positiontup or ())
        compiled = _Compiled(
            sql=str(done),
            names=names,
            processors=_bind_processors(done, names, dialect),
            defaults={n: done.binds[n].effective_value for n in names if n not in keys},
            results=results if any(p is not None for _k, p in results) else (),
        )
        self._compiled[keys] = compiled
        return compiled

    async def _on_driver(
        self, connection: AsyncConnection, parameters: Row, method: str
    ) -> tuple[_Compiled, Any]:
        compiled = self._compile(connection.dialect, tuple(sorted(parameters)))
        args = compiled.arguments(parameters)
        return compiled, await on_driver(connection, compiled.sql, args, method)


async def _driver_connection(session: AsyncSession) -> AsyncConnection | None:
    """The session's connection (its transaction begun) when statements may go to the driver;
    None on SQLite or when they may not (``driver_enabled``)."""
    if dialect_name(session) != "postgresql" or not _Driver.enabled:
        return None
    connection = await session.connection()
    return connection if driver_enabled(connection) else None


async def on_driver(
    connection: AsyncConnection,
    sql: str,
    args: tuple[Any, ...],
    method: str = "execute",
    *,
    begin: bool = True,
    **options: Any,
) -> Any:
    """Run PostgreSQL SQL (``$1`` parameters, already bind-processed) on the asyncpg connection
    under ``connection``: ``method`` is asyncpg's ``execute``, ``fetch`` or ``fetchrow`` (or
    ``copy_records_to_table``, ``sql`` being the table's name and ``options`` its keywords).

    SQLAlchemy's asyncpg adapter begins its transaction lazily, with its first statement; with
    ``begin`` this begins it the same way if it has not (unless the connection is in autocommit),
    so the statement runs in the connection's transaction. Without, on a connection nothing has
    begun, PostgreSQL commits the statement as it completes.

    An error goes through SQLAlchemy's own handling (``Connection._handle_dbapi_exception``): it
    comes back as SQLAlchemy's exception, and a lost connection is invalidated with the rest of
    the pool, so that it is never handed out again. When the connection was found closed before
    anything was sent, the exception says so (``NOT_SENT``): nothing of the statement ran.
    """
    adapter: Any = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
    async with adapter._execute_mutex:
        raw = adapter.driver_connection
        # A flag read: asyncpg marks a connection closed as soon as the server says goodbye.
        sent = not raw.is_closed()
        try:
            if begin and adapter._transaction is None:
                await adapter._start_transaction()
            return await getattr(raw, method)(sql, *args, **options)
        except Exception as error:
            failure = error
    raise await _translated(failure, adapter, connection, sql, args, sent=sent) from failure


# Set (True) on the exception of a statement that never left: its connection was already closed.
NOT_SENT = "govshared_not_sent"


async def _translated(
    error: Exception,
    adapter: Any,
    connection: AsyncConnection | Connection,
    sql: str,
    args: tuple[Any, ...],
    *,
    sent: bool,
) -> Exception:
    """The SQLAlchemy exception (``IntegrityError``, ``DataError``…) for a driver's error, the
    connection invalidated first if the error was a disconnect, exactly as SQLAlchemy does."""
    try:
        adapter._handle_exception(error)  # raises the adapter's DB-API form of the error
    except Exception as dbapi_error:
        error = dbapi_error
    sync_connection = _sync(connection)
    try:
        await greenlet_spawn(sync_connection._handle_dbapi_exception, error, sql, args, None, None)
    except Exception as translated:
        if not sent and isinstance(translated, sa_exc.DBAPIError):
            setattr(translated, NOT_SENT, True)
        return translated
    return error  # pragma: no cover - _handle_dbapi_exception always raises


async def execute_insert(session: AsyncSession, statement: Insert, rows: Row | list[Row]) -> None:
    """Run an INSERT now, or, inside ``inserts_together``, add it to the statement sent at its end."""
    batch: _Batch | None = session.info.get(_BATCH)
    if batch is None:
        await session.execute(statement, rows)
    else:
        batch.append((statement, rows))


@dataclass(frozen=True, slots=True)
class _Update:
    """An UPDATE of an ``inserts_together`` batch: ``table``'s rows whose ``where`` columns equal
    the values given (its rows: the values set, then the ``where`` values)."""

    table: Table
    where: tuple[str, ...]


# What a batch holds: each INSERT or UPDATE with its rows, in the order made.
_Batch = list[tuple[Insert | _Update, Row | list[Row]]]


@lru_cache(maxsize=64)
def _update_now(table: Table, where: tuple[str, ...]) -> DriverStatement:
    """``execute_update``'s statement run on its own (its SET clause: the parameters' columns)."""
    return DriverStatement(
        update(table).where(*(table.c[c] == bindparam(f"where_{c}") for c in where))
    )


async def execute_update(session: AsyncSession, table: Table, where: Row, values: Row) -> None:
    """``UPDATE table SET values`` where each column of ``where`` equals its value: run now (a
    ``DriverStatement``), or, inside ``inserts_together``, a data-modifying CTE of the statement
    sent at its end (on SQLite, run now as ever).

    How many rows it changed is not told: inside a block nothing is known before the block ends,
    and a CTE that matches no row fails nothing. Use it for rows the transaction holds already
    (locked ``FOR UPDATE``), which it cannot miss; an optimistic update, whose row count decides
    whether the request goes on, stays a ``DriverStatement.rowcount`` run as it comes.
    """
    batch: _Batch | None = session.info.get(_BATCH)
    if batch is None:
        statement = _update_now(table, tuple(where))
        await statement.rowcount(session, {**{f"where_{k}": v for k, v in where.items()}, **values})
    else:
        batch.append((_Update(table, tuple(where)), [values, where]))


async def _run_each(session: AsyncSession, batch: _Batch) -> None:
    """The batch's statements one by one, in the session's transaction."""
    for statement, rows in batch:
        if isinstance(statement, _Update):
            values, where = cast("list[Row]", rows)
            await execute_update(session, statement.table, where, values)
        else:
            await session.execute(statement, rows)


def goes_alone(session: AsyncSession) -> bool:
    """Whether ``inserts_together(session, last=True)`` would now send its statement alone,
    committed as it completes: a request's session on PostgreSQL that has begun nothing, with
    statements on the driver (should its internals turn out missing, the batch runs in the
    session's transaction instead: the same rows, committed by the request)."""
    return (
        _Driver.enabled
        and bool(session.info.get(REQUEST_TRANSACTION))
        and not session.in_transaction()
        and not session.info.get(SENT_ALONE)
        and dialect_name(session) == "postgresql"
    )


@asynccontextmanager
async def inserts_together(session: AsyncSession, *, last: bool = False) -> AsyncIterator[None]:
    """Send the INSERTs made through ``execute_insert`` (and UPDATEs through ``execute_update``)
    in the block as one statement at its end.

    On PostgreSQL they become data-modifying CTEs of one statement (``WITH w0 AS (INSERT …),
    w1 AS (INSERT …) INSERT …``), compiled once per shape and sent straight to the driver
    (``on_driver``): one round trip instead of one each, and none of SQLAlchemy's execution layer,
    which is what a hot write path such as a submission spends its time on.
    Add rows parents first, as one would one by one: SQLite, which has no data-modifying CTEs, runs
    each INSERT as it is made. Nothing in the block may read the rows back (they are not written
    until it ends), and the rows of one block do not see each other (one snapshot): an
    ``ON CONFLICT`` among them raises rather than skips; against rows already there it works as
    usual. An UPDATE in the block (``execute_update``) is one more CTE: it changes rows as they
    were before the statement, never a row another part of the statement writes (PostgreSQL
    leaves which change wins unspecified), and its row count is not known.

    ``last=True`` says the transaction does nothing after the block. When the session is a
    request's (``get_session``: committed by ``AutoCommitRoute`` once the endpoint succeeds) and
    has done nothing before the block either (it has not begun), the one statement is the whole
    transaction: it is sent on its own, committed by PostgreSQL as it completes (one statement is
    atomic: every row or none). That saves the BEGIN and COMMIT round trips; the after-commit hooks
    run once it is done, and the request's commit later has nothing left to do. A session someone else owns (a worker, a test
    that rolls back) always gets the statement inside its transaction.
    """
    if session.info.get(SENT_ALONE):
        raise SessionSentAlone(
            "this request's statement was sent alone and committed: nothing may follow it"
        )
    if dialect_name(session) != "postgresql" or _BATCH in session.info or not _Driver.enabled:
        yield
        return
    batch: _Batch = []
    session.info[_BATCH] = batch
    try:
        yield
    finally:
        del session.info[_BATCH]
    if not batch:
        return
    if (
        last
        and session.info.get(REQUEST_TRANSACTION)
        and not session.in_transaction()
        and await _execute_alone(session, batch)
    ):
        return
    if len(batch) == 1:
        await _run_each(session, batch)
        return
    connection = await session.connection()
    if driver_enabled(connection):
        sql, args = _together(batch, connection.dialect)
        await on_driver(connection, sql, args)
    else:
        await _run_each(session, batch)


async def _execute_alone(session: AsyncSession, batch: _Batch) -> bool:
    """The batch as one autocommitted statement on a pooled connection of the session's engine
    (False, nothing sent, when statements may not go to the driver: the caller runs the batch in
    the session's transaction instead).

    The pool's connection is taken and given back as it is (``AsyncEngine.raw_connection``), not
    through a ``Connection``: nothing begins on it, so there is no transaction for SQLAlchemy to
    track or end, and a ``Connection`` (made, then closed, each in a greenlet of its own) cost a
    keyed submission about twice what checking the connection out and in does. A ``Connection``
    is made only to translate an error, as SQLAlchemy would (``_handle_dbapi_exception``: a lost
    connection invalidated with the rest of the pool).

    Retried once, on another connection, when the first was found closed before the statement
    left (``NOT_SENT``): nothing ran, and nothing else of the request touched the database (the
    session never began). A statement that was sent is never retried: it may have committed.
    From then on the session refuses to begin (``SessionSentAlone``): whatever it did next would
    not be part of what was committed, and no one would commit it.
    """
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    for attempt in (1, 2):
        pooled = await greenlet_spawn(_checkout, engine.sync_engine)
        try:
            adapter: Any = pooled.dbapi_connection
            # The setting, and the internals checked once per adapter class on a Connection.
            known = _Driver.enabled and _Driver.checked.get(type(adapter), False)
            if not known and not driver_enabled(Connection(engine.sync_engine, connection=pooled)):
                return False
            # Nothing begins on it: no BEGIN before the statement nor COMMIT after; PostgreSQL
            # commits it as it completes. Returned to the pool, it has no transaction to reset.
            sql, args = _together(batch, engine.dialect)
            await _send_alone(engine, pooled, adapter, sql, args)
            session.info[SENT_ALONE] = True
            break
        except sa_exc.DBAPIError as error:
            if attempt == 2 or not getattr(error, NOT_SENT, False):
                raise
        finally:
            await greenlet_spawn(pooled.close)
    run_after_commit_hooks(session.sync_session)
    return True


def _checkout(engine: Engine) -> PoolProxiedConnection:
    """A connection from the engine's pool, a refused one named as ``Connection`` names it."""
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:
        Connection._handle_dbapi_exception_noconnection(error, engine.dialect, engine)
        raise


async def _send_alone(
    engine: AsyncEngine,
    pooled: PoolProxiedConnection,
    adapter: Any,
    sql: str,
    args: tuple[Any, ...],
) -> None:
    """``on_driver`` without begin, on a pooled connection no ``Connection`` holds."""
    async with adapter._execute_mutex:
        raw = adapter.driver_connection
        sent = not raw.is_closed()
        try:
            await raw.execute(sql, *args)
            return
        except Exception as error:
            failure = error
    holder = Connection(engine.sync_engine, connection=pooled)
    raise await _translated(failure, adapter, holder, sql, args, sent=sent) from failure


def _conflict_key(statement: Insert) -> tuple[Any, ...] | None:
    """What distinguishes one ON CONFLICT clause from another (None without one)."""
    clause = statement._post_values_clause
    if clause is None:
        return None
    targets = getattr(clause, "inferred_target_elements", None) or ()
    return (type(clause).__name__, getattr(clause, "constraint_target", None), *map(str, targets))


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the positional parameters, in order
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: Row = field(default_factory=dict)  # values bound in the statement itself (LIMIT 1)
    # (name, result processor) of each selected column, when any has one (empty otherwise)
    results: tuple[tuple[str, Callable[[Any], Any] | None], ...] = ()
    paths: tuple[tuple[int, int, str], ...] = ()  # an insert batch's values (see _together)

    def row(self, record: Any) -> Mapping[str, Any]:
        """A driver's row as SQLAlchemy would give it (through the columns' result processors)."""
        if not self.results:
            return cast("Mapping[str, Any]", record)
        return {
            name: value if processor is None else processor(value)
            for (name, processor), value in zip(self.results, record, strict=True)
        }

    def arguments(self, parameters: Row) -> tuple[Any, ...]:
        """The positional arguments for ``parameters``, through the bind processors."""
        defaults = self.defaults
        return tuple(
            value if processor is None else processor(value)
            for value, processor in zip(
                (parameters[n] if n in parameters else defaults[n] for n in self.names),
                self.processors,
                strict=True,
            )
        )


_SHAPES: dict[tuple[Any, ...], _Compiled] = {}


def _bind_processors(
    done: Any, names: tuple[str, ...], dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each positional parameter's bind processor (JSON serialisation and such), or None."""
    return tuple(
        done.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )


def _together(batch: _Batch, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """The batch as one SQL string and its positional arguments.

    SQLAlchemy does not cache the compiled form of an INSERT carrying CTEs (compiling it each time
    cost more than the round trips it saves), so each shape of batch (which tables, how many rows,
    which columns) is compiled once here with named bind parameters, and each execution only
    fills in the values, through the columns' own bind processors (JSON serialisation and such).
    """
    groups = [(made, rows if isinstance(rows, list) else [rows]) for made, rows in batch]
    key = tuple(
        (made, tuple(rows[0]))
        if isinstance(made, _Update)
        else (made.table, _conflict_key(made), len(rows), tuple(rows[0]))
        for made, rows in groups
    )
    compiled = _SHAPES.get(key)
    if compiled is None:
        parts: list[Any] = []
        for n, (made, rows) in enumerate(groups):
            columns = made.table.c
            if isinstance(made, _Update):  # rows: the values set, then the where values
                parts.append(
                    update(made.table)
                    .where(
                        *(
                            columns[c] == bindparam(f"w{n}_1_{c}", type_=columns[c].type)
                            for c in made.where
                        )
                    )
                    .values({c: bindparam(f"w{n}_0_{c}", type_=columns[c].type) for c in rows[0]})
                )
                continue
            parts.append(
                made.values(
                    [
                        {c: bindparam(f"w{n}_{r}_{c}", type_=columns[c].type) for c in row}
                        for r, row in enumerate(rows)
                    ]
                )
            )
        *first, statement = parts
        for n, part in enumerate(first):
            statement = statement.add_cte(part.cte(f"w{n}"))
        done = statement.compile(dialect=dialect)
        names = tuple(done.positiontup or ())
        compiled = _Compiled(
            sql=str(done),
            names=names,
            processors=_bind_processors(done, names, dialect),
            # Where each parameter's value is: (group, row, column) of "w{group}_{row}_{column}".
            paths=tuple(
                (int(g[1:]), int(r), column)
                for g, r, column in (name.split("_", 2) for name in names)
            ),
        )
        if len(_SHAPES) < 256:
            _SHAPES[key] = compiled
    args = []
    for (n, r, column), processor in zip(compiled.paths, compiled.processors, strict=True):
        value = groups[n][1][r][column]
        args.append(value if processor is None else processor(value))
    return compiled.sql, tuple(args)
