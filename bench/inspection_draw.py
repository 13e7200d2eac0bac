"""A 双随机 draw over a large register (PostgreSQL): target < 2 s for 100 k holders (issue 20).

Seeds ``BENCH_DRAW_HOLDERS`` valid licences of one item (default 100 000, each its own holder with a
valid USCC; 5 % with a bad-credit record, 1 % serious), starts license in process, creates a plan
with the default ratios per risk class and times ``POST /inspection-plans/{id}/draw`` through the
app: the candidate query, the credit classes, the draw, its record, the inspection tasks and their
notices in the outbox, in one transaction. ``BENCH_DRAW_ROUNDS`` plans are drawn (default 5);
prints each time, the CPU time the process spent on it (steadier than the wall clock on a shared
machine) and the load average, then the medians, and writes ``bench/results/draw-*.json``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from govshared.auth import Role  # noqa: E402
from govshared.migrate import upgrade  # noqa: E402
from govshared.testing import Tokens, create_postgres_database, drop_postgres_database  # noqa: E402
from govshared.uscc import org_code_check_char, uscc_check_char  # noqa: E402
from licensing.config import Settings  # noqa: E402
from licensing.main import ALEMBIC_INI, create_app  # noqa: E402

HOLDERS = int(os.environ.get("BENCH_DRAW_HOLDERS", "100000"))
ROUNDS = int(os.environ.get("BENCH_DRAW_ROUNDS", "5"))
ITEM = "JXW-XK-002"
LICENCE_TYPE = "salt_wholesale_certificate"


def uscc(n: int) -> str:
    """A valid USCC numbered ``n``."""
    org8 = f"{n:08d}"
    first17 = f"91310000{org8}{org_code_check_char(org8)}"
    return first17 + uscc_check_char(first17)


async def seed(url: str) -> None:
    """Licences and credit records, copied in bulk."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    today = date.today()
    licences = [
        (
            uuid.uuid4(),
            f"YDP-B{n:09d}",
            1,
            True,
            LICENCE_TYPE,
            ITEM,
            f"压测企业{n}有限公司",
            uscc(n),
            "上海市经济和信息化委员会",
            ("310000", "310115", "310118")[n % 3],
            today,
            today,
            "valid",
            "{}",
            False,
            "0" * 64,
            0,
            now,
            now,
        )
        for n in range(HOLDERS)
    ]
    credit = [
        (
            uuid.uuid4(),
            uscc(n),
            "inspection_non_compliant",
            n % 100 == 0,
            n % 100 == 0,
            "压测",
            "b",
            now,
        )
        for n in range(0, HOLDERS, 20)
    ]
    try:
        await conn.copy_records_to_table(
            "licences",
            records=licences,
            columns=[
                "id",
                "licence_no",
                "version",
                "is_current",
                "licence_type",
                "item_code",
                "holder_name",
                "holder_uscc",
                "issuing_authority",
                "jurisdiction",
                "issued_on",
                "valid_from",
                "status",
                "particulars",
                "granted_on_commitment",
                "content_hash",
                "renewal_reminders_sent",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "credit_records",
            records=credit,
            columns=[
                "id",
                "holder_uscc",
                "kind",
                "serious",
                "bars_commitment",
                "reason",
                "recorded_by",
                "recorded_at",
            ],
        )
        await conn.execute("ANALYZE licences")
        await conn.execute("ANALYZE credit_records")
    finally:
        await conn.close()


async def main() -> None:
    """Seed, draw ROUNDS plans, print the times."""
    url = await create_postgres_database("bench_draw")
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        with tempfile.TemporaryDirectory() as tmp:
            tokens = Tokens(Path(tmp))
            settings = Settings(
                environment="test",
                database_url=url,
                data_dir=Path(tmp),
                jwt_public_key_file=tokens.public_key_file,
                service_private_key_file=tokens.private_key_file,
                migrate_on_start=False,
                run_workers=False,
                log_json=False,
                log_level="WARNING",
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                await seed(url)
                headers = tokens.staff(Role.APPROVER, "310000")
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                    times: list[float] = []
                    cpu_times: list[float] = []
                    loads: list[float] = []
                    for round_no in range(ROUNDS):
                        plan = await client.post(
                            "/api/v1/inspection-plans",
                            json={
                                "name": f"压测计划{round_no}",
                                "item_codes": [ITEM],
                                "jurisdiction": "310000",
                                "period_from": date.today().isoformat(),
                                "period_to": date.today().isoformat(),
                                "inspectors": [f"执法人员{i:03d}" for i in range(200)],
                            },
                            headers=headers,
                        )
                        plan.raise_for_status()
                        load = os.getloadavg()[0]
                        cpu_started = time.process_time()
                        started = time.perf_counter()
                        drawn = await client.post(
                            f"/api/v1/inspection-plans/{plan.json()['id']}/draw",
                            headers=headers,
                            timeout=120,
                        )
                        elapsed = time.perf_counter() - started
                        cpu = time.process_time() - cpu_started
                        drawn.raise_for_status()
                        draw = drawn.json()["draw"]
                        times.append(elapsed)
                        cpu_times.append(cpu)
                        loads.append(load)
                        print(
                            f"round {round_no + 1}: {draw['candidates_count']} holders, "
                            f"{len(draw['targets'])} drawn, {elapsed:.3f} s "
                            f"(process CPU {cpu:.3f} s, load average {load:.1f})"
                        )
            result = {
                "benchmark": "inspection draw",
                "holders": HOLDERS,
                "drawn": len(draw["targets"]),
                "rounds_seconds": [round(t, 3) for t in times],
                "median_seconds": round(statistics.median(times), 3),
                "process_cpu_seconds": [round(t, 3) for t in cpu_times],
                "median_process_cpu_seconds": round(statistics.median(cpu_times), 3),
                "load_average_1min": [round(x, 1) for x in loads],
                "target_seconds": 2.0,
            }
            print(
                f"median draw over {HOLDERS} holders: {result['median_seconds']:.3f} s "
                f"(process CPU {result['median_process_cpu_seconds']:.3f} s; target < 2 s)"
            )
            out = ROOT / "bench" / "results" / f"draw-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
            out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
            print(f"written to {out.relative_to(ROOT)}")
    finally:
        await drop_postgres_database(url)


if __name__ == "__main__":
    asyncio.run(main())
