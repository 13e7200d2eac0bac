"""``inserts_together``: several INSERTs as one statement on PostgreSQL, one by one on SQLite."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from govshared.db import (
    REQUEST_TRANSACTION,
    SessionSentAlone,
    UTCDateTime,
    after_commit,
    make_engine,
    make_sessionmaker,
)
from govshared.sql import (
    INTERNALS,
    DriverStatement,
    _Driver,
    insert_ignore,
    missing_internals,
    snapshot,
    use_driver,
)
from govshared.sqlbatch import UpdateMissed, execute_insert, execute_update, inserts_together
from govshared.sqlcopy import JSONText, copy_rows
from govshared.testing import BACKENDS, drop_postgres_database, make_database

metadata = MetaData()
parents = Table(
    "parents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("data", JSON, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("note", String(50), nullable=True),
)
children = Table(
    "children",
    metadata,
    Column("parent_id", Uuid, ForeignKey("parents.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
)


# PostgreSQL both ways: statements on the driver, and the fallback through ``session.execute``
# (``SQL_ON_DRIVER=false``, or an SQLAlchemy without the internals): the same results.
MODES = [(backend, True) for backend in BACKENDS] + [("postgresql", False)]


@pytest.fixture(params=MODES, ids=lambda mode: mode[0] + ("" if mode[1] else "-fallback"))
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    backend, on_driver = request.param
    url = await make_database(backend, prefix="sql_test", directory=tmp_path)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    use_driver(on_driver)
    try:
        yield engine
    finally:
        use_driver(True)
        await engine.dispose()
        if backend == "postgresql":
            await drop_postgres_database(url)


def batched(engine: AsyncEngine) -> bool:
    """Whether INSERTs go together as one statement (PostgreSQL, on the driver)."""
    return engine.dialect.name == "postgresql" and _Driver.enabled


def statements_of(engine: AsyncEngine) -> list[str]:
    """The SQL the engine's connections send from now on, as the driver sees it (statements sent
    straight to asyncpg pass by SQLAlchemy's execution events)."""
    seen: list[str] = []
    if not batched(engine):  # everything goes through SQLAlchemy's execution
        event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_args: seen.append(statement),
        )
        return seen
    logging: set[int] = set()

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if id(driver) not in logging:
            logging.add(id(driver))
            driver.add_query_logger(lambda record: seen.append(record.query))

    event.listen(engine.sync_engine, "checkout", on_checkout)
    return seen


async def test_rows_of_several_tables_in_one_statement_on_postgresql(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    seen = statements_of(engine)
    parent = uuid.uuid4()
    at = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
    async with sessions() as session, session.begin():
        await session.execute(
            insert(parents), {"id": uuid.uuid4(), "name": "乙", "data": {}, "at": at, "note": "先"}
        )
    seen.clear()
    async with sessions() as session, session.begin(), inserts_together(session):
        await execute_insert(
            session,
            insert(parents),
            {"id": parent, "name": "甲", "data": {"k": ["值", 1]}, "at": at, "note": None},
        )
        await execute_insert(
            session,
            insert(children),
            [{"parent_id": parent, "seq": 1}, {"parent_id": parent, "seq": 2}],
        )
        await execute_insert(
            session,
            insert_ignore(session, parents, index_elements=["name"]),
            {"id": uuid.uuid4(), "name": "乙", "data": {}, "at": at, "note": "dup"},
        )
    inserts = [s for s in seen if "INSERT" in s]
    assert len(inserts) == (1 if batched(engine) else 3)
    async with sessions() as session:
        row = (await session.execute(select(parents).where(parents.c.name == "甲"))).one()
        assert (row.id, row.name, row.data, row.at, row.note) == (
            parent,
            "甲",
            {"k": ["值", 1]},
            at,
            None,
        )
        assert await session.scalar(select(func.count()).select_from(children)) == 2
        # ON CONFLICT DO NOTHING against a row already there (rows of one batch do not see each
        # other: the statement has one snapshot).
        assert await session.scalar(select(parents.c.note).where(parents.c.name == "乙")) == "先"


async def test_the_second_batch_of_the_same_shape_reuses_the_compiled_statement(
    engine: AsyncEngine,
) -> None:
    sessions = make_sessionmaker(engine)
    for name in ("一", "二"):
        async with sessions() as session, session.begin(), inserts_together(session):
            parent = uuid.uuid4()
            await execute_insert(
                session,
                insert(parents),
                {"id": parent, "name": name, "data": [], "at": datetime.now(UTC), "note": name},
            )
            await execute_insert(session, insert(children), {"parent_id": parent, "seq": 1})
    async with sessions() as session:
        names = (await session.scalars(select(parents.c.note).order_by(parents.c.note))).all()
        assert sorted(names) == ["一", "二"]


async def test_a_failing_batch_writes_nothing(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(
            insert(parents),
            {"id": uuid.uuid4(), "name": "占用", "data": {}, "at": datetime.now(UTC)},
        )
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin(), inserts_together(session):
            parent = uuid.uuid4()
            await execute_insert(session, insert(children), {"parent_id": parent, "seq": 1})
            await execute_insert(
                session,
                insert(parents),
                {"id": parent, "name": "占用", "data": {}, "at": datetime.now(UTC)},
            )
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(children)) == 0
        assert await session.scalar(select(func.count()).select_from(parents)) == 1


async def test_an_update_goes_with_the_inserts_and_fails_with_them(engine: AsyncEngine) -> None:
    """``execute_update`` in a block: one more CTE of the block's statement on PostgreSQL (run as
    made on SQLite); it sets the columns given on the rows its ``where`` names, and a statement
    that fails takes the change back with the rest."""
    at = await _seed(engine, "甲", "乙")
    sessions = make_sessionmaker(engine)
    seen = statements_of(engine)
    parent = uuid.uuid4()
    async with sessions() as session, session.begin(), inserts_together(session):
        await execute_update(session, parents, {"name": "甲"}, {"note": "改", "data": {"k": 1}})
        await execute_update(session, parents, {"name": "无"}, {"note": "不在"})
        await execute_insert(
            session, insert(parents), {"id": parent, "name": "丙", "data": {}, "at": at}
        )
        await execute_insert(session, insert(children), {"parent_id": parent, "seq": 1})
    writes = [s for s in seen if "INSERT" in s or "UPDATE" in s]
    assert len(writes) == (1 if batched(engine) else 4)
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin(), inserts_together(session):
            await execute_update(session, parents, {"name": "乙"}, {"note": "不应留下"})
            await execute_insert(  # the name is taken: the whole statement fails
                session, insert(parents), {"id": uuid.uuid4(), "name": "甲", "data": {}, "at": at}
            )
    # Alone in its block, and outside any block: run as it comes.
    async with sessions() as session, session.begin():
        async with inserts_together(session):
            await execute_update(session, parents, {"name": "丙"}, {"note": "丙改"})
        await execute_update(session, parents, {"name": "丙", "id": parent}, {"at": at})
    async with sessions() as session:
        rows = {r.name: (r.note, r.data) for r in await session.execute(select(parents))}
        assert await session.scalar(select(func.count()).select_from(children)) == 1
    assert rows == {"甲": ("改", {"k": 1}), "乙": ("乙注", {}), "丙": ("丙改", {})}


async def test_a_checked_update_that_misses_raises_at_the_blocks_end(engine: AsyncEngine) -> None:
    """``execute_update(..., checked=True)``: the optimistic update. When it matches its row the
    block's rows are written as ever (one statement on PostgreSQL); when it matches none,
    ``UpdateMissed`` is raised at the block's end (at once on SQLite) and the transaction, rolled
    back, leaves nothing of the block, however many other checks passed."""
    at = await _seed(engine, "甲", "乙")
    sessions = make_sessionmaker(engine)
    seen = statements_of(engine)
    parent = uuid.uuid4()
    async with sessions() as session, session.begin(), inserts_together(session):
        await execute_update(
            session, parents, {"name": "甲", "note": "甲注"}, {"note": "一"}, checked=True
        )
        await execute_insert(
            session, insert(parents), {"id": parent, "name": "丙", "data": {}, "at": at}
        )
        await execute_insert(session, insert(children), {"parent_id": parent, "seq": 1})
    writes = [s for s in seen if "INSERT" in s or "UPDATE" in s]
    assert len(writes) == (1 if batched(engine) else 3)
    with pytest.raises(UpdateMissed):
        async with sessions() as session, session.begin(), inserts_together(session):
            await execute_update(  # matches: "乙" has note "乙注"
                session, parents, {"name": "乙", "note": "乙注"}, {"note": "二"}, checked=True
            )
            await execute_insert(session, insert(children), {"parent_id": parent, "seq": 2})
            await execute_update(  # misses: "甲"'s note is "一" now
                session, parents, {"name": "甲", "note": "甲注"}, {"note": "二"}, checked=True
            )
    with pytest.raises(UpdateMissed):  # outside a block: at once
        async with sessions() as session, session.begin():
            await execute_update(session, parents, {"name": "无"}, {"note": "三"}, checked=True)
    async with sessions() as session:
        rows = {r.name: r.note for r in await session.execute(select(parents))}
        assert await session.scalar(select(func.count()).select_from(children)) == 1
    assert rows == {"甲": "一", "乙": "乙注", "丙": None}


def _family(at: datetime) -> tuple[uuid.UUID, list[tuple[Any, Any]]]:
    parent = uuid.uuid4()
    return parent, [
        (insert(parents), {"id": parent, "name": str(parent)[:8], "data": {}, "at": at}),
        (insert(children), [{"parent_id": parent, "seq": 1}, {"parent_id": parent, "seq": 2}]),
    ]


async def _count(engine: AsyncEngine, parent: uuid.UUID) -> int:
    async with make_sessionmaker(engine)() as other:
        return int(
            await other.scalar(
                select(func.count()).select_from(children).where(children.c.parent_id == parent)
            )
            or 0
        )


async def test_a_requests_only_statement_commits_as_it_completes_and_wakes_the_hooks(
    engine: AsyncEngine,
) -> None:
    """``last=True`` in a request's session that has done nothing else: on PostgreSQL the one
    statement is the whole transaction (no BEGIN/COMMIT round trips); SQLite keeps its
    transaction, committed by the request as usual."""
    woken: list[str] = []
    parent, rows = _family(datetime.now(UTC))
    async with make_sessionmaker(engine)() as session:
        session.info[REQUEST_TRANSACTION] = True
        async with inserts_together(session, last=True):
            for statement, values in rows:
                await execute_insert(session, statement, values)
            after_commit(session, lambda _s: woken.append("relay"))
        if batched(engine):
            assert not session.in_transaction()
            assert woken == ["relay"]  # committed already: the relay may send the event
            assert await _count(engine, parent) == 2  # another connection sees the rows
        else:
            assert session.in_transaction() and woken == []
        await session.commit()
    assert woken == ["relay"]
    assert await _count(engine, parent) == 2


async def test_a_failing_lone_statement_writes_nothing_and_raises_the_usual_error(
    engine: AsyncEngine,
) -> None:
    at = datetime.now(UTC)
    async with make_sessionmaker(engine)() as session, session.begin():
        await session.execute(
            insert(parents), {"id": uuid.uuid4(), "name": "已有", "data": {}, "at": at}
        )
    woken: list[str] = []
    parent = uuid.uuid4()
    with pytest.raises(IntegrityError):
        async with make_sessionmaker(engine)() as session:
            session.info[REQUEST_TRANSACTION] = True
            async with inserts_together(session, last=True):
                await execute_insert(
                    session, insert(parents), {"id": parent, "name": "已有", "data": {}, "at": at}
                )
                await execute_insert(session, insert(children), {"parent_id": parent, "seq": 1})
                after_commit(session, lambda _s: woken.append("relay"))
            await session.commit()
    assert woken == []
    assert await _count(engine, parent) == 0


@pytest.mark.parametrize("case", ["not_a_request", "request_already_begun"])
async def test_last_keeps_the_statement_in_a_transaction_someone_else_owns(
    engine: AsyncEngine, case: str
) -> None:
    """A worker's or a test's session, or a request that has already read or written: the rows
    roll back with its transaction."""
    parent, rows = _family(datetime.now(UTC))
    async with make_sessionmaker(engine)() as session:
        if case == "request_already_begun":
            session.info[REQUEST_TRANSACTION] = True
            await session.execute(select(func.count()).select_from(parents))
        async with inserts_together(session, last=True):
            for statement, values in rows:
                await execute_insert(session, statement, values)
        assert session.in_transaction()
        await session.rollback()
    assert await _count(engine, parent) == 0


# --- DriverStatement: hot-path statements on the driver, in the session's transaction ---------

_NOTE_BY_NAME = DriverStatement(
    select(parents.c.name, parents.c.note, parents.c.at)
    .where(parents.c.name == bindparam("name"))
    .order_by(parents.c.name)
    .limit(1)
)
_NAMES_AFTER = DriverStatement(
    select(parents.c.name).where(parents.c.name > bindparam("after")).order_by(parents.c.name)
)
_SET_BY_NAME = DriverStatement(update(parents).where(parents.c.name == bindparam("where_name")))


async def _seed(engine: AsyncEngine, *names: str) -> datetime:
    at = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    async with make_sessionmaker(engine)() as session, session.begin():
        for name in names:
            await session.execute(
                insert(parents),
                {"id": uuid.uuid4(), "name": name, "data": {}, "at": at, "note": f"{name}注"},
            )
    return at


async def test_driver_statements_read_and_update_with_bound_values(engine: AsyncEngine) -> None:
    at = await _seed(engine, "甲", "乙", "丙")
    async with make_sessionmaker(engine)() as session, session.begin():
        row = await _NOTE_BY_NAME.first(session, {"name": "乙"})
        assert row is not None
        assert (row["name"], row["note"], row["at"]) == ("乙", "乙注", at)
        assert await _NOTE_BY_NAME.first(session, {"name": "无"}) is None
        names = [r["name"] for r in await _NAMES_AFTER.rows(session, {"after": "丙"})]
        assert names == sorted(n for n in ("甲", "乙", "丙") if n > "丙")
        # The SET clause is the columns the parameters name; the where_ one only binds.
        assert await _SET_BY_NAME.rowcount(session, {"where_name": "甲", "note": "改"}) == 1
        assert await _SET_BY_NAME.rowcount(session, {"where_name": "无", "note": "改"}) == 0
        assert await _SET_BY_NAME.rowcount(session, {"where_name": "乙", "note": None}) == 1
    async with make_sessionmaker(engine)() as session:
        notes = dict((await session.execute(select(parents.c.name, parents.c.note))).all())
    assert notes == {"甲": "改", "乙": None, "丙": "丙注"}


@pytest.mark.parametrize("first", ["driver", "sqlalchemy"])
async def test_driver_statements_run_in_the_sessions_transaction(
    engine: AsyncEngine, first: str
) -> None:
    """Whether the statement is the transaction's first or not, a rollback undoes it."""
    await _seed(engine, "甲")
    async with make_sessionmaker(engine)() as session:
        if first == "sqlalchemy":
            await session.execute(select(parents.c.id))
        assert await _SET_BY_NAME.rowcount(session, {"where_name": "甲", "note": "未提交"}) == 1
        row = await _NOTE_BY_NAME.first(session, {"name": "甲"})
        assert row is not None and row["note"] == "未提交"
        await session.rollback()
        row = await _NOTE_BY_NAME.first(session, {"name": "甲"})
        assert row is not None and row["note"] == "甲注"
        await session.rollback()


async def test_driver_statement_errors_are_sqlalchemys(engine: AsyncEngine) -> None:
    await _seed(engine, "甲", "乙")
    async with make_sessionmaker(engine)() as session:
        with pytest.raises(IntegrityError):
            await _SET_BY_NAME.rowcount(session, {"where_name": "甲", "name": "乙"})
        await session.rollback()
        # The connection is fine afterwards.
        assert await _NOTE_BY_NAME.first(session, {"name": "甲"}) is not None


async def test_driver_rows_go_through_the_columns_result_processing(engine: AsyncEngine) -> None:
    """JSON decoded, UTCDateTime made aware: the values SQLAlchemy's own execution gives."""
    at = await _seed(engine, "甲")
    statement = DriverStatement(
        select(parents.c.data, parents.c.at).where(parents.c.name == bindparam("name"))
    )
    async with make_sessionmaker(engine)() as session:
        row = await statement.first(session, {"name": "甲"})
        assert row is not None
        assert row["data"] == {}
        assert row["at"] == at and row["at"].tzinfo is not None


# --- what govshared.sql leans on, and what it refuses ------------------------------------------


def _private_names_used(module: Any) -> set[str]:
    """Private attributes the module's code reads off objects other than its own (``self``,
    ``cls``, its own classes), and those it asks ``getattr`` for by name."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))
    own = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)} | {
        "self",
        "cls",
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in own)
        ):
            found.add(node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and str(node.args[1].value).startswith("_")
        ):
            found.add(str(node.args[1].value))
    return found


def test_the_sqlalchemy_internals_used_are_exactly_those_listed() -> None:
    """The list in the module's docstring and ``INTERNALS`` is the code's, no more, no less."""
    import govshared.db
    import govshared.sql
    import govshared.sqlbatch

    listed = {name for names in INTERNALS.values() for name in names}
    modules = (govshared.sql, govshared.sqlbatch, govshared.db)
    # The private names one of these modules imports from another are the suite's own.
    own = {name for module in modules for name in vars(module) if name.startswith("_")}
    assert set().union(*map(_private_names_used, modules)) - own == listed
    doc = govshared.sql.__doc__ or ""
    for name in listed:
        assert f"``{name}" in doc or f"{name}``" in doc or f".{name}" in doc, name


async def test_the_installed_sqlalchemy_has_every_internal_listed(tmp_path: Path) -> None:
    """An SQLAlchemy upgrade that renames one fails here (and falls back at run time)."""
    url = await make_database("postgresql", prefix="sql_test", directory=tmp_path)
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            assert missing_internals(connection) == []
            # What the check looks for is what the module uses.
            assert set(INTERNALS) == {
                "AsyncAdapt_asyncpg_connection",
                "Connection",
                "Insert",
                "SQLCompiler",
            }
            adapter = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
            assert type(adapter).__name__ == "AsyncAdapt_asyncpg_connection"
    finally:
        await engine.dispose()
        await drop_postgres_database(url)


async def test_a_missing_internal_falls_back_to_session_execute(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLAlchemy that lacks one: statements go through the session, with the same results."""
    if engine.dialect.name != "postgresql" or not _Driver.enabled:
        return  # the check only matters where statements would go to the driver
    monkeypatch.setattr(_Driver, "checked", {})
    async with engine.connect() as connection:
        adapter_class = type(connection.sync_connection.connection.dbapi_connection)  # type: ignore[union-attr]
    # As if a release had renamed one (SQLAlchemy's own code needs the real ones to run).
    renamed = {**INTERNALS, "AsyncAdapt_asyncpg_connection": ("_execute_mutex", "_renamed")}
    monkeypatch.setattr("govshared.sql.INTERNALS", renamed)
    at = await _seed(engine, "甲")
    parent, rows = _family(at)
    through_sqlalchemy: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_args: through_sqlalchemy.append(statement.split()[0]),
    )
    async with make_sessionmaker(engine)() as session:
        session.info[REQUEST_TRANSACTION] = True
        row = await _NOTE_BY_NAME.first(session, {"name": "甲"})
        assert row is not None and row["note"] == "甲注"
        async with inserts_together(session, last=True):
            for statement, values in rows:
                await execute_insert(session, statement, values)
        # Not sent alone: in the session's transaction, which its owner commits.
        assert session.in_transaction()
        await session.commit()
    assert _Driver.checked == {adapter_class: False}
    assert await _count(engine, parent) == 2
    # One by one, through SQLAlchemy (then _count's SELECT).
    assert through_sqlalchemy[:3] == ["SELECT", "INSERT", "INSERT"]


async def test_a_session_whose_statement_went_alone_refuses_anything_more(
    engine: AsyncEngine,
) -> None:
    """After ``last=True`` sent the request's statement alone (committed), a second submission or
    any statement in that session would be in no transaction anyone commits: it raises."""
    if not batched(engine):
        return  # elsewhere the statement stays in the session's transaction
    first, rows = _family(datetime.now(UTC))
    second, more = _family(datetime.now(UTC))
    async with make_sessionmaker(engine)() as session:
        session.info[REQUEST_TRANSACTION] = True
        async with inserts_together(session, last=True):
            for statement, values in rows:
                await execute_insert(session, statement, values)
        with pytest.raises(SessionSentAlone):
            async with inserts_together(session, last=True):
                for statement, values in more:
                    await execute_insert(session, statement, values)
        with pytest.raises(SessionSentAlone):
            await session.execute(select(func.count()).select_from(parents))
        with pytest.raises(SessionSentAlone):
            await _NOTE_BY_NAME.first(session, {"name": "甲"})
    assert await _count(engine, first) == 2
    assert await _count(engine, second) == 0


async def test_only_the_suites_sessions_run_the_after_commit_hooks(engine: AsyncEngine) -> None:
    """``db.py`` hooks the sessions of its own sessionmaker, not every SQLAlchemy session."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    woken: list[str] = []
    async with make_sessionmaker(engine)() as ours:
        await ours.execute(select(func.count()).select_from(parents))
        after_commit(ours, lambda _s: woken.append("ours"))
        await ours.commit()
    assert woken == ["ours"]
    async with async_sessionmaker(engine)() as theirs:
        theirs.info["after_commit"] = [lambda _s: woken.append("theirs")]
        await theirs.execute(select(func.count()).select_from(parents))
        await theirs.commit()
        assert theirs.info["after_commit"]  # untouched: not one of ours
        with pytest.raises(TypeError):
            after_commit(theirs, lambda _s: woken.append("theirs"))
    assert woken == ["ours"]


async def test_copy_rows_honours_the_fallback(engine: AsyncEngine) -> None:
    """``copy_rows`` stores the same rows whichever way it goes: COPY on the driver, one INSERT
    through SQLAlchemy on SQLite or with ``<P>SQL_ON_DRIVER=false`` (or internals missing)."""
    through_sqlalchemy: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_args: through_sqlalchemy.append(statement.split()[0]),
    )
    at = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "name": f"抽{n}",
            "data": JSONText(json.dumps({"序": n})),  # serialised once, as a draw sends it
            "at": at,
            "note": None,
        }
        for n in range(4)
    ]
    async with make_sessionmaker(engine)() as session, session.begin():
        await copy_rows(session, parents, rows)
    async with make_sessionmaker(engine)() as session:
        stored = (await session.execute(select(parents.c.name, parents.c.data, parents.c.at))).all()
    assert sorted((name, data["序"], when) for name, data, when in stored) == [
        (f"抽{n}", n, at) for n in range(4)
    ]
    assert ("INSERT" in through_sqlalchemy) == (not batched(engine))


async def test_a_json_column_is_stored_compact_with_its_chinese_as_is_and_reads_the_earlier_form(
    engine: AsyncEngine,
) -> None:
    """JSON columns are written by orjson (compact, non-ASCII as it is); a row written before, in
    the standard library's form (spaces, ``\\uXXXX`` escapes), reads back the same value, and a
    value orjson refuses (an integer beyond 64 bits) is stored in that earlier form."""
    value = {"名称": "上海盐业有限公司", "列表": [1, "二", None, True], "嵌套": {"x": 1.5}}
    huge = {"n": 2**70, "名": "甲"}
    as_text = "CAST(data AS TEXT)" if engine.dialect.name == "sqlite" else "data::text"
    async with engine.begin() as conn:
        for name, data in (("新", value), ("大", huge), ("旧", {})):
            await conn.execute(
                insert(parents),
                {"id": uuid.uuid4(), "name": name, "data": data, "at": datetime.now(UTC)},
            )
        earlier = json.dumps(value)  # what the columns held until 2026-12
        assert "\\u" in earlier and ", " in earlier
        as_json = ":d" if engine.dialect.name == "sqlite" else "CAST(:d AS JSON)"
        await conn.execute(
            text(f"UPDATE parents SET data = {as_json} WHERE name = '旧'"), {"d": earlier}
        )
    async with engine.connect() as conn:
        stored = dict((await conn.execute(text(f"SELECT name, {as_text} FROM parents"))).all())
        read = dict((await conn.execute(select(parents.c.name, parents.c.data))).all())
    assert stored["新"] == '{"名称":"上海盐业有限公司","列表":[1,"二",null,true],"嵌套":{"x":1.5}}'
    assert stored["大"] == json.dumps(huge)
    assert stored["旧"] == earlier
    assert read == {"新": value, "大": huge, "旧": value}


def test_a_snapshot_holds_a_rows_values_as_loaded_state() -> None:
    """``snapshot`` builds a mapped instance with a row's values as its state: the values read
    back, nothing recorded as a change (``cls(**values)`` would record each), still settable."""
    from sqlalchemy import inspect
    from sqlalchemy.orm import registry

    mapper = registry()

    class Parent:
        pass

    mapper.map_imperatively(Parent, parents)
    mapper.configure()
    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    values = {"id": uuid.uuid4(), "name": "甲", "data": {"k": 1}, "at": at, "note": None}
    made = snapshot(Parent, values)
    assert {k: getattr(made, k) for k in values} == values
    state = inspect(made)
    assert state.transient and not any(state.attrs[k].history.added for k in values)
    built = Parent(**values)
    assert inspect(built).attrs["name"].history.added == ["甲"]
    made.note = "改"  # type: ignore[attr-defined]
    assert made.note == "改" and state.attrs["note"].history.added == ["改"]  # type: ignore[attr-defined]
