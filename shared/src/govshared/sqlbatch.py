"""A hot path's writes as one statement: ``inserts_together`` gathers the INSERTs made through
``execute_insert`` (and the UPDATEs through ``execute_update``) and sends them at the block's end as
data-modifying CTEs of one statement on PostgreSQL, alone and autocommitted when the request does
nothing else (``goes_alone``); on SQLite each runs as it is made.

It sends through ``govshared.sql`` (``on_driver``, its compiled-statement form and its error
translation), so the SQLAlchemy internals it relies on are among those ``govshared.sql`` lists, and
its fallback setting applies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Dialect, Insert, Table, bindparam, func, literal_column, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from govshared.db import (
    REQUEST_TRANSACTION,
    SENT_ALONE,
    SessionSentAlone,
    run_after_commit_hooks,
)
from govshared.sql import (
    NOT_SENT,
    DriverStatement,
    Row,
    _bind_processors,
    _Compiled,
    _Driver,
    _translated,
    dialect_name,
    driver_enabled,
    on_driver,
)

# In ``session.info``: the batch an ``inserts_together`` block is gathering.
_BATCH = "govshared.inserts_together"


async def execute_insert(session: AsyncSession, statement: Insert, rows: Row | list[Row]) -> None:
    """Run an INSERT now, or, inside ``inserts_together``, add it to the statement sent at its end."""
    batch: _Batch | None = session.info.get(_BATCH)
    if batch is None:
        await session.execute(statement, rows)
    else:
        batch.append((statement, rows))


class UpdateMissed(Exception):
    """A checked UPDATE (``execute_update(..., checked=True)``) matched no row: the row is not
    as it was read (another transaction changed it since, or it is gone). Raised at the end of the
    ``inserts_together`` block, before its transaction commits: roll it back."""


@dataclass(frozen=True, slots=True)
class _Update:
    """An UPDATE of an ``inserts_together`` batch: ``table``'s rows whose ``where`` columns equal
    the values given (its rows: the values set, then the ``where`` values); ``checked``: the
    block's end raises ``UpdateMissed`` if it matched no row."""

    table: Table
    where: tuple[str, ...]
    checked: bool = False


# What a batch holds: each INSERT or UPDATE with its rows, in the order made.
_Batch = list[tuple[Insert | _Update, Row | list[Row]]]


@lru_cache(maxsize=64)
def _update_now(table: Table, where: tuple[str, ...]) -> DriverStatement:
    """``execute_update``'s statement run on its own (its SET clause: the parameters' columns)."""
    return DriverStatement(
        update(table).where(*(table.c[c] == bindparam(f"where_{c}") for c in where))
    )


async def execute_update(
    session: AsyncSession, table: Table, where: Row, values: Row, *, checked: bool = False
) -> None:
    """``UPDATE table SET values`` where each column of ``where`` equals its value: run now (a
    ``DriverStatement``), or, inside ``inserts_together``, a data-modifying CTE of the statement
    sent at its end (on SQLite, run now as ever).

    Unchecked, how many rows it changed is not told: use it for rows the transaction holds already
    (locked ``FOR UPDATE``), which it cannot miss. ``checked=True`` is the optimistic update
    (``where`` names the version read): if it matches no row, ``UpdateMissed`` is raised, at once
    when run now, else at the block's end, whose statement then reports the count of each checked
    CTE; the transaction must be rolled back (the block's other rows were written with it). A
    checked update keeps the block's statement inside the session's transaction (never sent
    alone: an autocommitted statement could not be taken back).
    """
    batch: _Batch | None = session.info.get(_BATCH)
    if batch is None:
        statement = _update_now(table, tuple(where))
        changed = await statement.rowcount(
            session, {**{f"where_{k}": v for k, v in where.items()}, **values}
        )
        if checked and not changed:
            raise UpdateMissed(f"no row of {table.name} matched {sorted(where)}")
    else:
        batch.append((_Update(table, tuple(where), checked), [values, where]))


async def _run_each(session: AsyncSession, batch: _Batch) -> None:
    """The batch's statements one by one, in the session's transaction."""
    for statement, rows in batch:
        if isinstance(statement, _Update):
            values, where = cast("list[Row]", rows)
            await execute_update(session, statement.table, where, values, checked=statement.checked)
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
    checks = sum(1 for made, _ in batch if isinstance(made, _Update) and made.checked)
    if (
        last
        and not checks
        and session.info.get(REQUEST_TRANSACTION)
        and not session.in_transaction()
        and await _execute_alone(session, batch)
    ):
        return
    if len(batch) == 1:
        await _run_each(session, batch)
        return
    connection = await session.connection()
    if not driver_enabled(connection):
        await _run_each(session, batch)
        return
    sql, args = _together(batch, connection.dialect)
    if not checks:
        await on_driver(connection, sql, args)
        return
    counts = await on_driver(connection, sql, args, "fetchrow")
    if not all(counts):
        raise UpdateMissed("a checked update of the batch matched no row")


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


_SHAPES: dict[tuple[Any, ...], _Compiled] = {}


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
        checked = [
            n for n, (made, _) in enumerate(groups) if isinstance(made, _Update) and made.checked
        ]
        if checked:
            # Every part a CTE; the statement itself reads how many rows each checked one matched.
            for n in checked:
                parts[n] = parts[n].returning(literal_column("1"))
            ctes = [part.cte(f"w{n}") for n, part in enumerate(parts)]
            statement: Any = select(
                *(
                    select(func.count()).select_from(ctes[n]).scalar_subquery().label(f"c{n}")
                    for n in checked
                )
            ).add_cte(*ctes)
        else:
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
