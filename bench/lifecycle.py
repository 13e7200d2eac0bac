"""Full application lifecycle under load: submit → accept → review → approve (every fifth denied).

The workload of a peer BPMN engine's five-step approval benchmark, over HTTP: approval runs with 2
uvicorn workers on PostgreSQL (license beside it for reform modes; the relay and the document sealer
in approval's worker process), and a load generator in a second process drives cases concurrently
on loopback for a bounded time. Prints completed cases per second, then how long the sealer takes
to seal the documents the load left pending, and writes ``bench/results/lifecycle-*.json``.
Asserts nothing.
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

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.submission import BODY, start_stack, stop_stack  # noqa: E402
from govshared.auth import Role, ensure_dev_keypair, mint_token  # noqa: E402

DURATION = float(os.environ.get("BENCH_SECONDS", "20"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "24"))


async def drive(base: str, tokens: dict[str, str]) -> dict[str, object]:
    """Run cases until DURATION is over; figures of the completed ones."""
    headers = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    completed: list[float] = []
    failures: dict[str, int] = {}
    counter = 0
    deadline = time.monotonic() + DURATION

    async def one_case(client: httpx.AsyncClient, n: int) -> None:
        started = time.perf_counter()
        steps = [("enterprise", "/api/v1/applications", BODY)]
        created = await client.post(steps[0][1], json=BODY, headers=headers["enterprise"])
        if created.status_code != 201:
            failures[f"submit {created.status_code}"] = (
                failures.get(f"submit {created.status_code}", 0) + 1
            )
            return
        path = f"/api/v1/applications/{created.json()['id']}"
        decision = (
            ("deny", {"reason": "不符合许可条件"})
            if n % 5 == 0
            else ("approve", {"opinion": "同意"})
        )
        for role, action, body in (
            ("acceptor", "accept", {}),
            ("reviewer", "review", {"opinion": "材料齐全，符合条件"}),
            ("approver", decision[0], decision[1]),
        ):
            response = await client.post(f"{path}/{action}", json=body, headers=headers[role])
            if response.status_code != 200:
                key = f"{action} {response.status_code}"
                failures[key] = failures.get(key, 0) + 1
                return
        completed.append(time.perf_counter() - started)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal counter
        while time.monotonic() < deadline:
            counter += 1
            await one_case(client, counter)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        elapsed = time.monotonic() - started
    completed.sort()
    return {
        "cases_completed": len(completed),
        "cases_per_second": round(len(completed) / elapsed, 1),
        "requests_per_second": round(4 * len(completed) / elapsed, 1),
        "case_p50_ms": round(statistics.median(completed) * 1000, 1) if completed else None,
        "case_p99_ms": round(completed[int(len(completed) * 0.99)] * 1000, 1)
        if completed
        else None,
        "failures": failures,
    }


async def document_counts(database_url: str) -> dict[str, int]:
    """Documents by status in approval's register."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT status, count(*) FROM application_documents GROUP BY status")
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        await engine.dispose()


async def drain_documents(database_url: str, limit_seconds: float = 300.0) -> dict[str, object]:
    """Wait for the worker's sealer to seal what the load left pending; how long it took."""
    started = time.monotonic()
    at_end = await document_counts(database_url)
    counts = at_end
    while counts.get("pending", 0) and time.monotonic() - started < limit_seconds:
        await asyncio.sleep(0.5)
        counts = await document_counts(database_url)
    drain = time.monotonic() - started
    return {
        "documents_at_end_of_load": at_end,
        "documents_after_drain": counts,
        "drain_seconds": round(drain, 1),
        "drain_documents_per_second": round(at_end.get("pending", 0) / drain, 1)
        if at_end.get("pending")
        else None,
    }


def main() -> None:
    """Start the stack, drive cases, print and save the figures."""
    work = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    private = ensure_dev_keypair(work / "keys")[0].read_text()
    tokens = {
        "enterprise": mint_token(
            private, role=Role.ENTERPRISE, uscc="91350100M000100Y43", subject="ent:b"
        ),
        "acceptor": mint_token(private, role=Role.ACCEPTOR, jurisdiction="310000", subject="s:a"),
        "reviewer": mint_token(private, role=Role.REVIEWER, jurisdiction="310000", subject="s:r"),
        "approver": mint_token(private, role=Role.APPROVER, jurisdiction="310000", subject="s:p"),
    }
    stack = start_stack(work)
    try:
        print(
            f"driving cases for {DURATION:.0f}s with {CONCURRENCY} concurrent cases ...", flush=True
        )
        figures = asyncio.run(drive(stack.approval_url, tokens))
        # Notices and decisions are sealed by approval's worker (running during the load, on the
        # same two cores); what it had not sealed when the load stopped, it seals now.
        print("load over; waiting for the sealer to seal the pending documents ...", flush=True)
        figures["documents"] = asyncio.run(drain_documents(stack.databases["approval"]))
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
            "duration_seconds": DURATION,
            "concurrency": CONCURRENCY,
            "workload": "1 KB submission, accept, review, approve (every fifth denied); the "
            "acceptance notice and the decision sealed as PDFs by approval's worker",
            **figures,
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
        out = ROOT / "bench" / "results" / f"lifecycle-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(f"written to {out.relative_to(ROOT)}")
    finally:
        stop_stack(stack)


if __name__ == "__main__":
    main()
