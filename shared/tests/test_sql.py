"""``inserts_together``: several INSERTs as one statement on PostgreSQL, one by one on SQLite."""

from __future__ import annotations

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
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from govshared.db import REQUEST_TRANSACTION, UTCDateTime, after_commit, make_engine
from govshared.sql import execute_insert, insert_ignore, inserts_together
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


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = await make_database(request.param, prefix="sql_test", directory=tmp_path)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()
    if request.param == "postgresql":
        await drop_postgres_database(url)


def statements_of(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_args: seen.append(statement),
    )
    return seen


async def test_rows_of_several_tables_in_one_statement_on_postgresql(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine)
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
    assert len(inserts) == (1 if engine.dialect.name == "postgresql" else 3)
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
    sessions = async_sessionmaker(engine)
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
    sessions = async_sessionmaker(engine)
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


def _family(at: datetime) -> tuple[uuid.UUID, list[tuple[Any, Any]]]:
    parent = uuid.uuid4()
    return parent, [
        (insert(parents), {"id": parent, "name": str(parent)[:8], "data": {}, "at": at}),
        (insert(children), [{"parent_id": parent, "seq": 1}, {"parent_id": parent, "seq": 2}]),
    ]


async def _count(engine: AsyncEngine, parent: uuid.UUID) -> int:
    async with async_sessionmaker(engine)() as other:
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
    async with async_sessionmaker(engine)() as session:
        session.info[REQUEST_TRANSACTION] = True
        async with inserts_together(session, last=True):
            for statement, values in rows:
                await execute_insert(session, statement, values)
            after_commit(session, lambda _s: woken.append("relay"))
        if engine.dialect.name == "postgresql":
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
    async with async_sessionmaker(engine)() as session, session.begin():
        await session.execute(
            insert(parents), {"id": uuid.uuid4(), "name": "已有", "data": {}, "at": at}
        )
    woken: list[str] = []
    parent = uuid.uuid4()
    with pytest.raises(IntegrityError):
        async with async_sessionmaker(engine)() as session:
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
    async with async_sessionmaker(engine)() as session:
        if case == "request_already_begun":
            session.info[REQUEST_TRANSACTION] = True
            await session.execute(select(func.count()).select_from(parents))
        async with inserts_together(session, last=True):
            for statement, values in rows:
                await execute_insert(session, statement, values)
        assert session.in_transaction()
        await session.rollback()
    assert await _count(engine, parent) == 0
