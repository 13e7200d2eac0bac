"""The staff work queue at 10 thousand and at a million applications (PostgreSQL).

Seeds applications with ``generate_series`` (30 % open with a due date, the rest closed), starts
approval on loopback, and times the queue a member of staff pages through: city-wide staff, a
district, an item filter, and pages deep into the queue by cursor. Prints p50/p99 per size and
writes ``bench/results/queue-*.json``. Targets (issue 3): p99 ≤ 50 ms and at most 1.5× the 10k figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from govshared.auth import Role, ensure_dev_keypair, mint_token  # noqa: E402
from govshared.migrate import upgrade  # noqa: E402
from govshared.testing import create_postgres_database, drop_postgres_database  # noqa: E402
from tools.suite import ServiceProcess  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_QUEUE_SIZES", "10000,1000000").split(",")]
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "200"))
PORT = 18011

# Columns drawn independently (random(), seeded), so that no filter correlates with the due date.
SEED_SQL = """
INSERT INTO applications (id, application_no, item_code, item_version, item_name, applicant_uscc,
    applicant_name, jurisdiction, business_type, reform_mode, intake_route, state, form,
    submitted_at, updated_at, row_version, due_on)
SELECT gen_random_uuid(),
       'BQ' || lpad(i::text, 12, '0'),
       (ARRAY['JXW-XK-002','JXW-XK-003','JXW-XK-004','JXW-XK-006','JXW-XK-007'])[1 + floor(random() * 5)::int],
       1, '压测事项', '91350100M000100Y43', '压测企业' || (i % 5000) || '有限公司',
       (ARRAY['310000','310000','310000','310115','310118'])[1 + floor(random() * 5)::int],
       'new', 'optimize_service', 'review',
       s.state,
       '{}'::json,
       now() - make_interval(secs => ($2::int - i)),
       now(), 1,
       CASE WHEN s.state IN ('approved', 'denied', 'filed') THEN NULL
            ELSE current_date + floor(random() * 60)::int END
FROM generate_series($1::int, $2::int) AS i
CROSS JOIN LATERAL (
    SELECT CASE WHEN random() < 0.7 THEN (ARRAY['approved','denied','filed'])[1 + floor(random() * 3)::int]
                ELSE (ARRAY['submitted','accepted','in_review'])[1 + floor(random() * 3)::int] END
           AS state
    WHERE i IS NOT NULL  -- refers to the row, so that each row draws its own state
) AS s
"""


async def seed(url: str, start: int, end: int) -> None:
    """Insert applications numbered start..end and refresh the planner's statistics."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT setseed(0.42)")
        for low in range(start, end + 1, 200_000):
            await conn.execute(SEED_SQL, low, min(end, low + 199_999))
        await conn.execute("ANALYZE applications")
    finally:
        await conn.close()


def measure(base: str, headers: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    """p50/p99 of each queue view, in ms, SAMPLES requests each."""
    views = {
        "city_first_page": ("city", {}),
        "district_first_page": ("district", {}),
        "item_filter": ("city", {"item_code": "JXW-XK-006"}),
        "state_filter": ("city", {"state": "in_review"}),
    }
    results: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, (who, params) in views.items():
            for _ in range(10):  # warm the connection pools and the plan cache
                client.get(
                    "/api/v1/staff/applications",
                    params={**params, "limit": 20},
                    headers=headers[who],
                )
            timings = []
            for _ in range(SAMPLES):
                started = time.perf_counter()
                client.get(
                    "/api/v1/staff/applications",
                    params={**params, "limit": 20},
                    headers=headers[who],
                ).raise_for_status()
                timings.append((time.perf_counter() - started) * 1000)
            results[name] = _figures(timings)
        # Paging deep: follow the cursor 50 pages, timing each page.
        timings, cursor = [], None
        for _ in range(min(SAMPLES, 50)):
            params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            page = client.get(
                "/api/v1/staff/applications", params=params, headers=headers["city"]
            ).json()
            timings.append((time.perf_counter() - started) * 1000)
            cursor = page["next_cursor"]
        results["cursor_pages"] = _figures(timings)
    return results


def _figures(timings: list[float]) -> dict[str, float]:
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
    }


def main() -> None:
    """Seed, serve, measure, grow, measure again."""
    work = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    private, _ = ensure_dev_keypair(work / "keys")
    key = private.read_text()
    headers = {
        "city": {
            "Authorization": f"Bearer {mint_token(key, role=Role.ACCEPTOR, jurisdiction='310000')}"
        },
        "district": {
            "Authorization": f"Bearer {mint_token(key, role=Role.ACCEPTOR, jurisdiction='310115')}"
        },
    }
    url = asyncio.run(create_postgres_database("bench_queue"))
    env = {
        "APPROVAL_DATABASE_URL": url,
        "APPROVAL_DATA_DIR": str(work),
        "APPROVAL_RUN_WORKERS": "false",
        "APPROVAL_LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess("approval", PORT, env, log_path=work / "approval.log")
    report: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "samples": SAMPLES,
    }
    try:
        upgrade(ROOT / "services" / "approval" / "alembic.ini", url)
        proc.start()
        proc.wait_ready(120)  # loads the demo catalogue the seeded rows refer to
        seeded = 0
        for size in SIZES:
            print(f"seeding to {size:,} applications ...", flush=True)
            asyncio.run(seed(url, seeded + 1, size))
            seeded = size
            report[str(size)] = measure(proc.url, headers)
            print(json.dumps({size: report[str(size)]}, indent=1), flush=True)
        if len(SIZES) >= 2:
            small, large = report[str(SIZES[0])], report[str(SIZES[-1])]
            report["ratio_p99_large_to_small"] = {
                view: round(large[view]["p99_ms"] / small[view]["p99_ms"], 2)  # type: ignore[index]
                for view in large  # type: ignore[union-attr]
            }
        print(json.dumps(report, indent=2))
        out = ROOT / "bench" / "results" / f"staff-queue-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(report, indent=2))
        print(f"written to {out.relative_to(ROOT)}")
    finally:
        proc.stop()
        asyncio.run(drop_postgres_database(url))


if __name__ == "__main__":
    main()
