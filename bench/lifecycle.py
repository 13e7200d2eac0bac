"""Full application lifecycle under load: submit → accept → review → approve (every fifth denied).

The workload of a peer BPMN engine's five-step approval benchmark, over HTTP: approval runs with 2
uvicorn workers on PostgreSQL (license beside it for reform modes; the relay in its own process), and
a load generator in a second process drives cases concurrently on loopback for a bounded time.
Prints completed cases per second and writes ``bench/results/lifecycle-*.json``. Asserts nothing.
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
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
            "duration_seconds": DURATION,
            "concurrency": CONCURRENCY,
            "workload": "1 KB submission, accept, review, approve (every fifth denied)",
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
