"""``under_prefix`` / ``in_scope``: the jurisdiction prefix match as a range an index serves, with
the LIKE kept, selects exactly the rows a plain prefix match selects, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from govshared import jurisdictions
from govshared.db import make_engine
from govshared.testing import BACKENDS, drop_postgres_database, make_database

metadata = MetaData()
areas = Table(
    "areas",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("jurisdiction", String(12), nullable=False),
    Index("ix_areas_jurisdiction", "jurisdiction"),
)

# Codes on either side of every prefix's range: a prefix ending in 9 (3109, 319, 310109) makes
# the range's upper end carry; townships and villages (9, 10, 12 digits) sort inside their
# district's range; neighbours of other provinces and near-misses outside it.
CODES = [
    *("310000", "310100", "310101", "310109", "310110", "3101", "31", "3"),
    *("310115", "310115001", "3101150010", "310115001001", "310116", "310190", "310199"),
    *("310900", "310901", "310999", "311000", "311100", "319900", "319901", "319999"),
    *("320000", "320100", "300000", "309999", "110105", "820000", "829999", "83"),
]
PREFIXES = [
    *("31", "32", "82", "11", "3101", "3109", "3199", "319", "310"),
    *("310115", "310109", "310199", "319900", "310115001", "3101150010"),
]


@pytest.mark.parametrize(
    ("prefix", "following"),
    [
        ("3101", "3102"),
        ("3109", "3110"),
        ("31", "32"),
        ("319", "320"),
        ("3199", "3200"),
        ("310199", "310200"),
        ("310115", "310116"),
        ("310115009", "310115010"),
        ("310115999", "310116000"),
        ("82", "83"),
    ],
)
def test_the_next_prefix_carries_and_keeps_its_length(prefix: str, following: str) -> None:
    assert jurisdictions.next_prefix(prefix) == following


@pytest.mark.parametrize("bad", ["", "3%", "31_", "99", "00", "3", "３１", "1" * 13, None])
def test_anything_but_a_jurisdiction_prefix_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        jurisdictions.next_prefix(bad)
    with pytest.raises(ValueError):
        jurisdictions.under_prefix(areas.c.jurisdiction, bad)


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = await make_database(request.param, prefix="scope_test", directory=tmp_path)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            insert(areas), [{"id": i, "jurisdiction": c} for i, c in enumerate(CODES)]
        )
    try:
        yield engine
    finally:
        await engine.dispose()
        if request.param == "postgresql":
            await drop_postgres_database(url)


async def test_the_range_selects_exactly_the_rows_of_the_prefix_match(engine: AsyncEngine) -> None:
    column = areas.c.jurisdiction
    async with engine.connect() as conn:
        for prefix in PREFIXES:
            for autoescape in (False, True):
                clause = jurisdictions.under_prefix(column, prefix, autoescape=autoescape)
                found = (await conn.execute(select(column).where(clause))).scalars().all()
                plain = (
                    (await conn.execute(select(column).where(column.startswith(prefix))))
                    .scalars()
                    .all()
                )
                expected = [c for c in CODES if c.startswith(prefix)]
                assert sorted(found) == sorted(plain) == sorted(expected), prefix
        for code in ("310000", "310100", "310115", "310115001", "319900", "320000"):
            clause = jurisdictions.in_scope(column, code)
            found = set((await conn.execute(select(column).where(clause))).scalars().all())
            prefix = jurisdictions.scope_prefix(code)
            assert found == {c for c in CODES if c.startswith(prefix)}, code
            valid = {c for c in CODES if jurisdictions.is_valid(c)}
            assert found & valid == {c for c in valid if jurisdictions.covers(code, c)}, code


async def test_the_range_is_an_index_condition(engine: AsyncEngine) -> None:
    """What the LIKE alone is not (outside PostgreSQL's C collation; SQLite's LIKE ignores case)."""
    clause = jurisdictions.under_prefix(areas.c.jurisdiction, "310115")
    statement = select(areas.c.id).where(clause)
    async with engine.connect() as conn:
        compiled = statement.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
        if engine.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET enable_seqscan = off")
            plan = [str(r[0]) for r in (await conn.exec_driver_sql(f"EXPLAIN {compiled}")).all()]
            conditions = [line for line in plan if "Index Cond:" in line]
            assert not any("Seq Scan" in line for line in plan), plan
            assert conditions and all("jurisdiction" in line for line in conditions), plan
        else:
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
            details = [str(r[-1]) for r in rows]
            assert any(d.startswith("SEARCH") and "ix_areas_jurisdiction" in d for d in details), (
                details
            )
