"""Dialect helpers for the few statements that PostgreSQL and SQLite spell differently, and the
hot paths' statements sent straight to asyncpg (``DriverStatement``, ``on_driver``; a block's writes
as one statement: ``govshared.sqlbatch.inserts_together``).

Sending a statement straight to the driver (here and in ``govshared.sqlbatch``) leans on these
SQLAlchemy internals, exactly (2.1;
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, TypeVar, cast
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Dialect,
    Executable,
    Insert,
    Table,
    literal_column,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

Row = dict[str, Any]
log = logging.getLogger(__name__)

# Every SQLAlchemy internal this module (with ``govshared.sqlbatch`` and ``govshared.db``) relies on,
# by the object it is on.
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


def violated_constraint(error: BaseException) -> str | None:
    """The name of the constraint a PostgreSQL error reports (a unique or foreign key violation),
    following SQLAlchemy's wrapping (``.orig``) and the driver's (``__cause__``) down to asyncpg's
    exception; None if none names one (SQLite never does)."""
    seen: BaseException | None = error
    for _ in range(6):
        if seen is None:
            return None
        name = getattr(seen, "constraint_name", None)
        if isinstance(name, str):
            return name
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return None


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


_T = TypeVar("_T")


def snapshot(cls: type[_T], values: Mapping[str, Any]) -> _T:
    """An instance of the mapped class ``cls`` holding ``values`` (every column of a row read by a
    Core statement) as the ORM holds a loaded row: as its state, not as changes. ``cls(**values)``
    records each value through the attribute events, about ten times the cost (29 against 2.3 µs
    for an application's 18 columns, measured here), for a history nobody reads: the instance is
    never added to a session (every write of the hot paths is a Core statement). Uses the class
    manager's public ``new_instance``."""
    instance: _T = manager_of_class(cls).new_instance()
    instance.__dict__.update(values)
    return instance


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
    sync_connection = _sync(connection)
    if isinstance(error, TimeoutError):
        # No answer within the statement timeout (``make_engine``: a partition, most likely): the
        # connection's state is unknown, asyncpg still cancelling the statement on it. It is not
        # used again; the error stays what it is (``is_database_outage``: a 503).
        await greenlet_spawn(sync_connection.invalidate, error)
        return error
    try:
        adapter._handle_exception(error)  # raises the adapter's DB-API form of the error
    except Exception as dbapi_error:
        error = dbapi_error
    try:
        await greenlet_spawn(sync_connection._handle_dbapi_exception, error, sql, args, None, None)
    except Exception as translated:
        if not sent and isinstance(translated, sa_exc.DBAPIError):
            setattr(translated, NOT_SENT, True)
        return translated
    return error  # pragma: no cover - _handle_dbapi_exception always raises


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


def _bind_processors(
    done: Any, names: tuple[str, ...], dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each positional parameter's bind processor (JSON serialisation and such), or None."""
    return tuple(
        done.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
