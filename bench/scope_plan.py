"""Jurisdiction-scoped staff lists: does the scope use an index? (EXPLAIN, not timing)

Staff lists are scoped by a prefix of the jurisdiction code (``govshared.jurisdictions
.under_prefix``). Fills two fresh, migrated PostgreSQL databases with ``--rows`` applications
(approval) and ``--rows`` licences (license) across Shanghai's districts (310151 holds one row
in 5000, 310120 one in 200, the others about 6 % each, a third of it in their townships), then runs the real repository calls, once with the scope as the
LIKE alone (``column.startswith(prefix)``, as before) and once as ``under_prefix`` (a range before
the same LIKE), captures the SQL they send and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of it:

* approval's staff application queue (``ApplicationRepository.staff_queue``, the open states, first
  page of 20) of each of the three sizes of district (310151, 310120, 310115);
* license's licence list (``LicenceRepository.list_current``, first page of 20) of the same.

And two lists that had no index beginning with ``jurisdiction``, whose "before" is the same query
(already a range) on the schema one migration earlier, "after" with the migration's index
(``--lists inspections deliveries`` runs only these):

* license's inspection list (``InspectionRepository.inspections``, ``GET /api/v1/inspections``,
  by due date; ``ix_inspections_jurisdiction``) of the three districts and the city (``31``);
* notify's delivery list (``DeliveryRepository.list_by_status``, ``GET /api/v1/deliveries``, dead
  letters, newest change first; ``ix_deliveries_scope``) of the same.

Both with the server's default collation (``C.UTF-8`` on the test server: not ``C`` to the LIKE
optimisation) unless ``--icu`` asks for a ``zh-Hans-CN`` ICU database. Buffers and row counts do
not depend on the machine's load; the times in the plans do.

    uv run python bench/scope_plan.py --rows 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import approval.repository
import licensing.licences.repository
from approval.repository import ApplicationRepository
from govshared.applications import OPEN_STATES
from govshared.migrate import upgrade
from govshared.testing import create_postgres_database, drop_postgres_database
from licensing.inspections.repository import InspectionRepository
from licensing.licences.repository import LicenceRepository
from notify.models import DeliveryStatus
from notify.repository import DeliveryRepository

ROOT = Path(__file__).resolve().parents[1]
DISTRICTS = [
    *("310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112"),
    *("310113", "310114", "310115", "310116", "310117", "310118"),
]

# jurisdiction: 310151 for one row in 5000 (a district with few cases), 310120 for one in 200
# (0.5 %), the others spread over the districts (about 6 % each) and their townships.
JURISDICTION_SQL = """
  CASE WHEN i % 5000 = 0 THEN '310151' WHEN i % 200 = 0 THEN '310120'
       WHEN i % 3 = 0 THEN (ARRAY[{d}])[1 + (i / 3) % {n}] || lpad((1 + i % 12)::text, 3, '0')
       ELSE (ARRAY[{d}])[1 + i % {n}] END
""".format(d=",".join(f"'{c}'" for c in DISTRICTS), n=len(DISTRICTS))


async def fill(url: str, table: str, count: int, special: dict[str, str]) -> None:
    """``count`` rows of ``table``: every NOT NULL column without a default filled by its type,
    ``special`` columns by the given SQL (over ``i``); foreign keys not checked (replica role)."""
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        columns = await conn.fetch(
            "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns"
            " WHERE table_name = $1 AND is_nullable = 'NO' AND column_default IS NULL",
            table,
        )
        values = dict(special)
        for c in columns:
            name, kind, size = c["column_name"], c["data_type"], c["character_maximum_length"]
            if name in values:
                continue
            if kind == "uuid":
                values[name] = "gen_random_uuid()"
            elif kind in ("integer", "bigint", "smallint"):
                values[name] = "i % 30 + 1"
            elif kind == "boolean":
                values[name] = "false"
            elif kind == "date":
                values[name] = "current_date - (i % 700)"
            elif kind.startswith("timestamp"):
                values[name] = "now() - make_interval(secs => i * 60)"
            elif kind in ("json", "jsonb"):
                values[name] = "'{}'"
            else:
                values[name] = f"left('x' || i, {size or 64})"
        names = ", ".join(f'"{n}"' for n in values)
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {', '.join(values.values())}"
            f" FROM generate_series(1, {count}) AS i"
        )
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


@contextmanager
def scoped_by_like_alone(module: Any) -> Iterator[None]:
    """The repository module's scope as it was: ``column LIKE 'prefix%'`` alone."""
    original = module.under_prefix
    module.under_prefix = lambda column, prefix, autoescape=False: column.startswith(
        prefix, autoescape=autoescape
    )
    try:
        yield
    finally:
        module.under_prefix = original


Call = Callable[[AsyncSession], Awaitable[Any]]


async def explain(url: str, table: str, call: Call) -> dict[str, Any]:
    engine = create_async_engine(url)
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with AsyncSession(engine) as session:
            found = await call(session)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, parameters = next(c for c in captured if table in c[0])
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        lines = [str(row[0]) for row in result.all()]
    await engine.dispose()
    top = next((line for line in lines if "Buffers:" in line), "")
    return {"rows": len(found), "buffers": top.strip(), "plan": lines}


async def approval_plans(url: str, count: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, ROOT / "services/approval/alembic.ini", url)
    states = ["submitted", "accepted", "in_review", "approved", "denied", "supplement_requested"]
    await fill(
        url,
        "applications",
        count,
        {
            "jurisdiction": JURISDICTION_SQL,
            "state": f"(ARRAY[{','.join(repr(s) for s in states)}])[1 + i % {len(states)}]",
            "application_no": "'SQ' || lpad(i::text, 12, '0')",
            "applicant_uscc": "'91310000' || lpad((i % 5000)::text, 10, '0')",
            "due_on": "current_date + (i % 60)",
        },
    )
    open_states = sorted(s.value for s in OPEN_STATES)
    out: dict[str, Any] = {}
    for prefix in ("310151", "310120", "310115"):

        def call(session: AsyncSession, p: str = prefix) -> Awaitable[Any]:
            return ApplicationRepository(session).staff_queue(
                jurisdiction_prefix=p,
                states=open_states,
                item_code=None,
                keyword=None,
                after=None,
                limit=20,
                today=date.today(),
            )

        with scoped_by_like_alone(approval.repository):
            before = await explain(url, "applications", call)
        after = await explain(url, "applications", call)
        out[f"staff queue {prefix}"] = {"before": before, "after": after}
    return out


async def license_plans(url: str, count: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, ROOT / "services/license/alembic.ini", url)
    await fill(
        url,
        "licences",
        count,
        {
            "jurisdiction": JURISDICTION_SQL,
            "licence_no": "'XK' || lpad(i::text, 12, '0')",
            "version": "1",
            "is_current": "true",
            "status": "(ARRAY['valid','valid','valid','revoked','expired'])[1 + i % 5]",
            "holder_uscc": "'91310000' || lpad((i % 5000)::text, 10, '0')",
        },
    )
    out: dict[str, Any] = {}
    for prefix in ("310151", "310120", "310115"):

        def call(session: AsyncSession, p: str = prefix) -> Awaitable[Any]:
            return LicenceRepository(session).list_current(jurisdiction_prefix=p, limit=20)

        with scoped_by_like_alone(licensing.licences.repository):
            before = await explain(url, "licences", call)
        after = await explain(url, "licences", call)
        out[f"licence list {prefix}"] = {"before": before, "after": after}
    return out


async def with_and_without_index(
    url: str,
    *,
    service: str,
    previous: str,
    table: str,
    calls: dict[str, Call],
    fill_rows: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """Each call's plan on the schema at ``previous`` (before), then at head (after)."""
    ini = ROOT / f"services/{service}/alembic.ini"
    await asyncio.to_thread(upgrade, ini, url, previous)
    await fill_rows()
    before = {name: await explain(url, table, call) for name, call in calls.items()}
    await asyncio.to_thread(upgrade, ini, url)
    return {
        name: {"before": before[name], "after": await explain(url, table, call)}
        for name, call in calls.items()
    }


async def inspection_plans(url: str, count: int) -> dict[str, Any]:
    calls: dict[str, Call] = {}
    for prefix in ("310151", "310120", "310115", "31"):

        def call(session: AsyncSession, p: str = prefix) -> Awaitable[Any]:
            return InspectionRepository(session).inspections(
                plan_id=None, jurisdiction_prefix=p, status=None, after=None, limit=21
            )

        calls[f"inspection list {prefix}"] = call

    async def fill_rows() -> None:
        await fill(
            url,
            "inspections",
            count,
            {
                "jurisdiction": JURISDICTION_SQL,
                "kind": "'random'",
                "status": "(ARRAY['open','recorded','recorded'])[1 + i % 3]",
                "due_on": "current_date + (i % 400) - 200",
                "licence_nos": "'[]'",
                "inspectors": "'[]'",
            },
        )

    return await with_and_without_index(
        url,
        service="license",
        previous="l0005_correction_timer",
        table="inspections",
        calls=calls,
        fill_rows=fill_rows,
    )


async def delivery_plans(url: str, count: int) -> dict[str, Any]:
    calls: dict[str, Call] = {}
    for code in ("310151", "310120", "310115", "310000"):

        def call(session: AsyncSession, c: str = code) -> Awaitable[Any]:
            return DeliveryRepository(session).list_by_status(
                DeliveryStatus.DEAD, jurisdiction=c, limit=21, after=None
            )

        calls[f"delivery list {code}"] = call

    async def fill_rows() -> None:
        statuses = ["delivered"] * 4 + ["sent", "failed", "dead"]
        await fill(
            url,
            "deliveries",
            count,
            {
                "jurisdiction": JURISDICTION_SQL,
                "status": f"(ARRAY[{','.join(repr(s) for s in statuses)}])[1 + mod(abs(hashint4(i)::bigint), {len(statuses)})]",
                "recipient": "'91310000' || lpad((i % 5000)::text, 10, '0')",
                "channel": "'sms'",
                "target": "''",
                "context": "'{}'",
            },
        )

    return await with_and_without_index(
        url,
        service="notify",
        previous="n0002_inbox_payload",
        table="deliveries",
        calls=calls,
        fill_rows=fill_rows,
    )


LISTS = {
    "approval": approval_plans,
    "licences": license_plans,
    "inspections": inspection_plans,
    "deliveries": delivery_plans,
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--icu", action="store_true", help="a zh-Hans-CN ICU database")
    parser.add_argument("--plans", action="store_true", help="print the whole plans")
    parser.add_argument("--lists", nargs="+", choices=sorted(LISTS), default=list(LISTS))
    args = parser.parse_args()
    report: dict[str, Any] = {"rows": args.rows, "icu": args.icu}
    for plans in (LISTS[name] for name in args.lists):
        url = await create_postgres_database(
            "scope_plan", icu_locale="zh-Hans-CN" if args.icu else None
        )
        try:
            report.update(await plans(url, args.rows))
        finally:
            await drop_postgres_database(url)
    if not args.plans:
        for value in report.values():
            if isinstance(value, dict):
                for side in ("before", "after"):
                    plan = value[side].pop("plan")
                    value[side]["scan"] = [line.strip() for line in plan if "Scan" in line]
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
