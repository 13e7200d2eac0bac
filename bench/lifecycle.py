"""Full application lifecycle under load: submit → accept → review → approve (every fifth denied).

The workload of a peer BPMN engine's five-step approval benchmark, over HTTP: approval runs with 2
uvicorn workers on PostgreSQL (license beside it for reform modes; the relay and the document sealer
in approval's worker process, started when the load stops unless BENCH_WORKER_DURING_LOAD=1), and
wrk (``bench/lifecycle.lua``) drives cases concurrently on loopback for a bounded time. Prints
completed cases per second, then how long the sealer takes to seal the documents the load left
pending (unless BENCH_SKIP_DRAIN=1), and writes ``bench/results/lifecycle-*.json``. Asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu import (  # noqa: E402
    cpu_seconds,
    family,
    machine_busy_seconds,
    postgres_cpu,
    process_parents,
)
from bench.submission import (  # noqa: E402
    ACCEPT_BODY,
    BODY,
    PORTS,
    Stack,
    ensure_wrk,
    start_stack,
    stop_stack,
)
from govshared.auth import Role, ensure_dev_keypair, mint_token  # noqa: E402
from tools.suite import ServiceProcess  # noqa: E402

DURATION = float(os.environ.get("BENCH_SECONDS", "20"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "24"))
# By default approval's worker (relay and sealer) starts when the load stops, as in ``make bench``:
# on two cores the sealer's PDF layout, and what the relay sets off in license (issuing and sealing
# licences) and notify, would otherwise share the CPU with the requests being measured. With
# BENCH_WORKER_DURING_LOAD=1 the whole suite runs during the load.
WORKER_DURING_LOAD = os.environ.get("BENCH_WORKER_DURING_LOAD", "") == "1"
# BENCH_SKIP_DRAIN=1: stop after the load (documents counted, not drained), for ``make bench-peer``,
# which compares cases per second only.
SKIP_DRAIN = os.environ.get("BENCH_SKIP_DRAIN", "") == "1"
# Replicas of approval's worker (relay, timers, sealer), sharing the queues with SKIP LOCKED.
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))


def lua_string(text: str) -> str:
    """A Lua long-bracket string (UTF-8 kept as it is; Lua 5.1 has no unicode escapes)."""
    return f"[==[{text}]==]"


def parts_snapshot(parts: dict[str, list[int]], databases: list[str]) -> dict[str, float]:
    """CPU seconds so far of each part of the suite (its processes and their children), of the
    bench's PostgreSQL backends, and of the whole machine (one read of the process table)."""
    parents = process_parents()
    found = {
        name: sum(cpu_seconds(p) for pid in pids for p in family(pid, parents))
        for name, pids in parts.items()
    }
    found["postgresql"] = postgres_cpu(databases)
    found["machine"] = machine_busy_seconds()
    return found


def drive(
    base: str,
    tokens: dict[str, str],
    work: Path,
    parts: dict[str, list[int]],
    databases: list[str],
) -> dict[str, object]:
    """Run cases with wrk for DURATION seconds (a C load generator: an httpx one spent most of a
    core of the two on itself); figures of the completed ones, with the CPU milliseconds each case
    took in each part of the suite (``parts``: approval's web workers first, as ``app``), in the
    bench's PostgreSQL backends and on the whole machine (steadier than cases per second from run
    to run)."""
    script = work / "lifecycle.lua"
    header = [
        f"BODY = {lua_string(json.dumps(BODY, ensure_ascii=False))}",
        f"ACCEPT = {lua_string(json.dumps(ACCEPT_BODY, ensure_ascii=False))}",
        "TOKENS = {",
    ]
    header += [f"  {role} = {lua_string(token)}," for role, token in tokens.items()]
    header.append("}")
    script.write_text("\n".join(header) + "\n" + (ROOT / "bench" / "lifecycle.lua").read_text())
    before = parts_snapshot(parts, databases)
    out = subprocess.run(
        [
            ensure_wrk(),
            f"-t{CONCURRENCY}",
            f"-c{CONCURRENCY}",
            f"-d{DURATION:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    after = parts_snapshot(parts, databases)
    values = dict(
        re.findall(r"^(COMPLETED|FAILURES|P50|P99|REQUESTS|SECONDS) ([\d.]+)$", out, re.M)
    )
    if "COMPLETED" not in values:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds = float(values["SECONDS"])
    cases = int(values["COMPLETED"])
    return {
        "cases_completed": cases,
        "cases_per_second": round(cases / seconds, 1),
        "requests_per_second": round(int(values["REQUESTS"]) / seconds, 1),
        "request_p50_ms": round(float(values["P50"]), 1),
        "request_p99_ms": round(float(values["P99"]), 1),
        # Little's law: CONCURRENCY cases in flight all the time.
        "case_mean_ms": round(CONCURRENCY / (cases / seconds) * 1000, 1) if cases else None,
        "abandoned_cases": int(values["FAILURES"]),
        "load_seconds": seconds,
        **{
            f"{part}_cpu_ms_per_case": round((after[part] - before[part]) * 1000 / cases, 2)
            for part in after
            if cases
        },
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


def start_workers(stack: Stack, work: Path) -> None:
    """Approval's worker and ``WORKERS - 1`` more replicas of it."""
    stack.start_relay()
    for n in range(1, WORKERS):
        replica = ServiceProcess(
            "approval",
            0,
            stack.relay.env,
            log_path=work / f"approval-worker-{n}.log",
            command=stack.relay.command,
        )
        replica.start()
        stack.processes.append(replica)


async def wait_listening(database_url: str, workers: int, within_seconds: float = 180.0) -> None:
    """Until ``workers`` worker processes listen for the web processes' wake-ups (each opens its
    ``LISTEN`` connection once it has started its relay and sealer), or ``within_seconds``."""
    engine = create_async_engine(database_url)
    deadline = time.monotonic() + within_seconds
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                listening = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
                    )
                )
            if (listening or 0) >= workers:
                return
            await asyncio.sleep(0.5)
        print(f"warning: {workers} workers not listening after {within_seconds:.0f}s", flush=True)
    finally:
        await engine.dispose()


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
    stack = start_stack(work, relay=False)
    try:
        if WORKER_DURING_LOAD:
            start_workers(stack, work)
            # Started, not yet running: on a slow or busy CPU a worker's imports alone took most
            # of a 20 s load, which then measured its start rather than its sealing.
            asyncio.run(wait_listening(stack.databases["approval"], WORKERS))
        print(
            f"driving cases for {DURATION:.0f}s with {CONCURRENCY} concurrent cases ...", flush=True
        )
        parts = {
            name: [p.process.pid for p in stack.processes if p.process is not None and test(p)]
            for name, test in (
                ("app", lambda p: p.port == PORTS["approval"]),
                ("approval_workers", lambda p: p.name == "approval" and p.port == 0),
                ("license", lambda p: p.port == PORTS["license"]),
                ("notify", lambda p: p.port == PORTS["notify"]),
            )
        }
        databases = [make_url(url).database or "" for url in stack.databases.values()]
        figures = drive(stack.approval_url, tokens, work, parts, databases)
        if SKIP_DRAIN:
            at_end = asyncio.run(document_counts(stack.databases["approval"]))
            documents = {"documents_at_end_of_load": at_end, "drain": "skipped"}
        else:
            # Notices and decisions are sealed by approval's worker (running during the load, on
            # the same two cores); what it had not sealed when the load stopped, it seals now.
            print("load over; waiting for the sealer to seal the pending documents ...", flush=True)
            if not WORKER_DURING_LOAD:
                start_workers(stack, work)
            documents = asyncio.run(drain_documents(stack.databases["approval"]))
        # What the load produced a second, and what was left unsealed at its end, in seconds of
        # that production (the sealers keep up when it stays at or under one second).
        made = sum(documents["documents_at_end_of_load"].values())  # type: ignore[attr-defined]
        pending = documents["documents_at_end_of_load"].get("pending", 0)  # type: ignore[attr-defined]
        seconds = float(figures.pop("load_seconds"))  # type: ignore[arg-type]
        documents["produced_per_second"] = round(made / seconds, 1)
        documents["sealed_per_second_during_load"] = round((made - pending) / seconds, 1)
        documents["pending_at_end_seconds_of_production"] = (
            round(pending / (made / seconds), 2) if made else None
        )
        figures["documents"] = documents
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
            "duration_seconds": DURATION,
            "concurrency": CONCURRENCY,
            "worker_during_load": WORKER_DURING_LOAD,
            "worker_replicas": WORKERS,
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
