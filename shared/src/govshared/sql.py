"""Dialect helpers for the few statements that PostgreSQL and SQLite spell differently."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import CursorResult, Dialect, Executable, Insert, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from govshared.db import REQUEST_TRANSACTION, run_after_commit_hooks

Row = dict[str, Any]


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


async def execute_core(
    session: AsyncSession, statement: Executable, parameters: Row | None = None
) -> CursorResult[Any]:
    """Run a Core statement on the session's connection, in its transaction, past the ORM.

    ``session.execute`` takes an ORM path even for a statement on a table (plugins, events,
    autoflush); on a hot path that holds no pending ORM objects, going straight to the connection
    costs less. Build the statement once with ``bindparam`` and pass the values here.
    """
    connection = await session.connection()
    return await connection.execute(statement, parameters)


async def execute_insert(session: AsyncSession, statement: Insert, rows: Row | list[Row]) -> None:
    """Run an INSERT now, or, inside ``inserts_together``, add it to the statement sent at its end."""
    batch: list[tuple[Insert, Row | list[Row]]] | None = session.info.get(_BATCH)
    if batch is None:
        await session.execute(statement, rows)
    else:
        batch.append((statement, rows))


@asynccontextmanager
async def inserts_together(session: AsyncSession, *, last: bool = False) -> AsyncIterator[None]:
    """Send the INSERTs made through ``execute_insert`` in the block as one statement at its end.

    On PostgreSQL they become data-modifying CTEs of one statement (``WITH w0 AS (INSERT …),
    w1 AS (INSERT …) INSERT …``): one round trip and one pass through SQLAlchemy's execution
    instead of one each, which is what a hot write path such as a submission spends its time on.
    Add rows parents first, as one would one by one: SQLite, which has no data-modifying CTEs, runs
    each INSERT as it is made. Nothing in the block may read the rows back (they are not written
    until it ends), and the rows of one block do not see each other (one snapshot): an
    ``ON CONFLICT`` among them raises rather than skips; against rows already there it works as
    usual.

    ``last=True`` says the transaction does nothing after the block. When the session is a
    request's (``get_session``: committed by ``AutoCommitRoute`` once the endpoint succeeds) and
    has done nothing before the block either (it has not begun), the one statement is the whole
    transaction: it is sent on its own, committed by PostgreSQL as it completes (one statement is
    atomic: every row or none), straight to the driver. That saves the BEGIN and COMMIT round
    trips and SQLAlchemy's execution path; the after-commit hooks run once it is done, and the
    request's commit later has nothing left to do. A session someone else owns (a worker, a test
    that rolls back) always gets the statement inside its transaction.
    """
    if dialect_name(session) != "postgresql" or _BATCH in session.info:
        yield
        return
    batch: list[tuple[Insert, Row | list[Row]]] = []
    session.info[_BATCH] = batch
    try:
        yield
    finally:
        del session.info[_BATCH]
    if not batch:
        return
    if last and session.info.get(REQUEST_TRANSACTION) and not session.in_transaction():
        await _execute_alone(session, batch)
    elif len(batch) == 1:
        await session.execute(*batch[0])
    else:
        connection = await session.connection()
        sql, args = _together(batch, connection.dialect)
        await connection.exec_driver_sql(sql, args)


async def _execute_alone(
    session: AsyncSession, batch: list[tuple[Insert, Row | list[Row]]]
) -> None:
    """The batch as one autocommitted statement on a pooled connection of the session's engine."""
    assert isinstance(session.bind, AsyncEngine)
    async with session.bind.connect() as connection:
        # AUTOCOMMIT: no BEGIN before it nor COMMIT after; PostgreSQL commits the statement.
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        sql, args = _together(batch, connection.dialect)
        await connection.exec_driver_sql(sql, args)
    run_after_commit_hooks(session.sync_session)


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


_SHAPES: dict[tuple[Any, ...], _Compiled] = {}


def _together(
    batch: list[tuple[Insert, Row | list[Row]]], dialect: Dialect
) -> tuple[str, tuple[Any, ...]]:
    """The batch as one SQL string and its positional arguments.

    SQLAlchemy does not cache the compiled form of an INSERT carrying CTEs (compiling it each time
    cost more than the round trips it saves), so each shape of batch (which tables, how many rows,
    which columns) is compiled once here with named bind parameters, and each execution only
    fills in the values, through the columns' own bind processors (JSON serialisation and such).
    """
    groups = [(insert_, rows if isinstance(rows, list) else [rows]) for insert_, rows in batch]
    key = tuple(
        (insert_.table, _conflict_key(insert_), len(rows), tuple(rows[0]))
        for insert_, rows in groups
    )
    compiled = _SHAPES.get(key)
    if compiled is None:
        parts = []
        for n, (insert_, rows) in enumerate(groups):
            columns = insert_.table.c
            parts.append(
                insert_.values(
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
            processors=tuple(
                done.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            ),
        )
        if len(_SHAPES) < 256:
            _SHAPES[key] = compiled
    values: Row = {}
    for n, (_insert, rows) in enumerate(groups):
        for r, row in enumerate(rows):
            values.update({f"w{n}_{r}_{column}": value for column, value in row.items()})
    args = tuple(
        value if processor is None else processor(value)
        for value, processor in zip(
            (values[name] for name in compiled.names), compiled.processors, strict=True
        )
    )
    return compiled.sql, args
