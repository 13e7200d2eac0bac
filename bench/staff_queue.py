"""The staff work queue at 10 thousand and at a million applications (PostgreSQL).

Seeds one database per size with ``generate_series`` (30 % open with a due date, the rest closed),
starts one approval per database on loopback, and times the queue a member of staff pages through:
city-wide staff, a district, an item filter, and pages deep into the queue by cursor, asking the
sizes in turn request by request. Prints p50/p99 per size and their ratios, and writes
``bench/results/staff-queue-*.json``. Targets: p99 ≤ 20 ms at a million, and at most 1.1× the
10k figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
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
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "1000"))
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


def measure(bases: dict[str, str], headers: dict[str, dict[str, str]]) -> dict[str, dict]:
    """p50/p99 of each queue view per size, in ms, SAMPLES requests each.

    The sizes are served by one process each and asked in turn, request by request (the order
    flipped every other sample), so that a slow moment of the machine falls on both alike: measured
    one after the other, the drift between two moments was as large as the difference sought.
    """
    views = {
        "city_first_page": ("city", {}),
        "district_first_page": ("district", {}),
        "item_filter": ("city", {"item_code": "JXW-XK-006"}),
        "state_filter": ("city", {"state": "in_review"}),
    }
    sizes = list(bases)
    clients = {size: httpx.Client(base_url=base, timeout=30) for size, base in bases.items()}
    timings: dict[str, dict[str, list[float]]] = {size: {} for size in sizes}

    def timed(size: str, params: dict[str, object], who: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = clients[size].get(
            "/api/v1/staff/applications", params=params, headers=headers[who]
        )
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        return elapsed, response.json()

    try:
        for name, (who, filters) in views.items():
            params = {**filters, "limit": 20}
            for size in sizes:
                for _ in range(10):  # warm the connection pools and the plan cache
                    timed(size, params, who)
                timings[size][name] = []
            for sample in range(SAMPLES):
                for size in sizes if sample % 2 == 0 else reversed(sizes):
                    timings[size][name].append(timed(size, params, who)[0])
        # Paging deep: follow the cursor 50 pages, timing each page, the sizes in turn.
        cursors: dict[str, object] = {size: None for size in sizes}
        for size in sizes:
            timings[size]["cursor_pages"] = []
        for _ in range(min(SAMPLES, 50)):
            for size in sizes:
                cursor = cursors[size]
                params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
                elapsed, page = timed(size, params, "city")
                timings[size]["cursor_pages"].append(elapsed)
                cursors[size] = page["next_cursor"]
    finally:
        for client in clients.values():
            client.close()
    return {
        size: {name: _figures(values) for name, values in per_view.items()}
        for size, per_view in timings.items()
    }


def _figures(timings: list[float]) -> dict[str, float]:
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
    }


def main() -> None:
    """Seed one database per size, serve each, measure them in turn."""
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
    urls = {str(size): asyncio.run(create_postgres_database("bench_queue")) for size in SIZES}
    procs: dict[str, ServiceProcess] = {}
    report: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "samples": SAMPLES,
        "load_average_at_start": os.getloadavg(),
        "order": "the sizes asked in turn, request by request",
    }
    try:
        for index, size in enumerate(SIZES):
            url = urls[str(size)]
            upgrade(ROOT / "services" / "approval" / "alembic.ini", url)
            data_dir = work / str(size)
            shutil.copytree(work / "keys", data_dir / "keys")  # the tokens' key pair, for each
            env = {
                "APPROVAL_DATABASE_URL": url,
                "APPROVAL_DATA_DIR": str(data_dir),
                "APPROVAL_RUN_WORKERS": "false",
                "APPROVAL_LOG_LEVEL": "WARNING",
            }
            proc = ServiceProcess(
                "approval", PORT + index, env, log_path=work / f"approval-{size}.log"
            )
            procs[str(size)] = proc
            proc.start()
            proc.wait_ready(120)  # loads the demo catalogue the seeded rows refer to
            print(f"seeding {size:,} applications ...", flush=True)
            asyncio.run(seed(url, 1, size))
        measured = measure({size: proc.url for size, proc in procs.items()}, headers)
        report.update(measured)
        if len(SIZES) >= 2:
            small, large = measured[str(SIZES[0])], measured[str(SIZES[-1])]
            report["ratio_p99_large_to_small"] = {
                view: round(large[view]["p99_ms"] / small[view]["p99_ms"], 2) for view in large
            }
            report["ratio_p50_large_to_small"] = {
                view: round(large[view]["p50_ms"] / small[view]["p50_ms"], 2) for view in large
            }
        print(json.dumps(report, indent=2))
        out = ROOT / "bench" / "results" / f"staff-queue-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(report, indent=2))
        print(f"written to {out.relative_to(ROOT)}")
    finally:
        for proc in procs.values():
            proc.stop()
        for url in urls.values():
            asyncio.run(drop_postgres_database(url))


if __name__ == "__main__":
    main()
