"""``make bench-latency``: submit → the applicant's inbox, one submission at a time, on PostgreSQL.

The stack of ``make bench`` (approval with 2 uvicorn workers, its relay in a worker process of its
own, license and notify), nothing else loading it. Each submission carries an ``Idempotency-Key``
as the portal's do; the time runs from sending it until notify's inbox stream (Server-Sent Events,
what the portal shows) brings the message; ``BENCH_OBSERVE=poll`` reads ``GET /inbox`` every 2 ms
instead, the earlier way, whose reads are requests notify serves beside the relay's. The relay polls every ``APPROVAL_RELAY_POLL_SECONDS`` (0.2 s) as a fallback and is woken by
each commit through PostgreSQL (``govshared.wake``); ``BENCH_RELAY_POLL_SECONDS`` changes the poll
(a long one shows the wake alone). Besides the end-to-end figure it prints the parts: the
submission's response, the outbox row to notify's inbox row (both databases' timestamps) and to the
relay's record of notify's answer. Prints the figures and writes them to ``bench/results/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.submission import BODY, PORTS, USCC, start_stack, stop_stack  # noqa: E402
from govshared.auth import Role, ensure_dev_keypair, mint_token  # noqa: E402

SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "300"))
WARMUP = 20
POLL = os.environ.get("BENCH_RELAY_POLL_SECONDS")
# How the bench sees the inbox: "stream" (notify's SSE stream, as the portal) or "poll" (GET
# /inbox every 2 ms, the earlier way, whose reads compete with the relay's POST in notify).
OBSERVE = os.environ.get("BENCH_OBSERVE", "stream")
NUMBER = re.compile(r"[0-9]{6}-[0-9]{8}-[0-9A-F]{8}")
# Ports apart from ``make bench``'s, so that both can run on one machine.
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "18100"))


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of the sorted ``values`` lie (nearest rank)."""
    return values[min(len(values) - 1, int(len(values) * share))]


async def measure(token: str, samples: int) -> tuple[list[float], list[float]]:
    """Milliseconds from each submission to its appearance in the inbox, and to its response."""
    if OBSERVE == "poll":
        return await measure_polling(token, samples)
    return await measure_streaming(token, samples)


async def submit(
    client: httpx.AsyncClient, approval: str, headers: dict[str, str], responses: list[float]
) -> tuple[float, str]:
    """Submit one application with a new Idempotency-Key, as the portal does; when it started
    and its number (the response's time appended to ``responses``)."""
    started = time.perf_counter()
    created = await client.post(
        f"{approval}/api/v1/applications",
        json=BODY,
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    created.raise_for_status()
    responses.append((time.perf_counter() - started) * 1000)
    return started, str(created.json()["application_no"])


async def measure_streaming(token: str, samples: int) -> tuple[list[float], list[float]]:
    """The inbox watched as the portal watches it: notify's Server-Sent Events stream, one
    connection held open (woken by notify's commit), nothing read in between."""
    approval = f"http://127.0.0.1:{PORTS['approval']}"
    notify = f"http://127.0.0.1:{PORTS['notify']}"
    headers = {"Authorization": f"Bearer {token}"}
    seen: dict[str, float] = {}  # application number → when the stream brought it
    arrived = asyncio.Event()
    connected = asyncio.Event()

    async def watch(client: httpx.AsyncClient) -> None:
        last_id: str | None = None
        while True:  # the stream ends after notify's SSE_MAX_SECONDS: resume as EventSource does
            resume = {"Last-Event-ID": last_id} if last_id else {}
            async with client.stream(
                "GET", f"{notify}/api/v1/inbox/stream", headers={**headers, **resume}
            ) as stream:
                async for line in stream.aiter_lines():
                    connected.set()
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("data:"):
                        at = time.perf_counter()
                        for number in NUMBER.findall(line):
                            seen.setdefault(number, at)
                        arrived.set()

    latencies: list[float] = []
    responses: list[float] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        watcher = asyncio.create_task(watch(client))
        try:
            await asyncio.wait_for(connected.wait(), timeout=30)
            for _ in range(samples):
                started, number = await submit(client, approval, headers, responses)
                deadline = started + 10
                while number not in seen and time.perf_counter() < deadline:
                    arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(arrived.wait(), deadline - time.perf_counter())
                if number in seen:
                    latencies.append((seen[number] - started) * 1000)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return latencies, responses


async def measure_polling(token: str, samples: int) -> tuple[list[float], list[float]]:
    """The inbox read every 2 ms (the earlier way: each read is a request notify serves beside
    the relay's, on the same two cores)."""
    approval = f"http://127.0.0.1:{PORTS['approval']}"
    notify = f"http://127.0.0.1:{PORTS['notify']}"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    responses: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(samples):
            started, number = await submit(client, approval, headers, responses)
            deadline = started + 10
            while time.perf_counter() < deadline:
                inbox = await client.get(
                    f"{notify}/api/v1/inbox", params={"limit": 5}, headers=headers
                )
                if number in inbox.text:
                    latencies.append((time.perf_counter() - started) * 1000)
                    break
                await asyncio.sleep(0.002)
    return latencies, responses


async def inbox_milliseconds(databases: dict[str, str], samples: int) -> list[float]:
    """For the last ``samples`` events to notify: milliseconds from the outbox row's creation in
    approval to the inbox message's creation in notify (its transaction then commits): the
    relay's wake, claim and POST, and notify's intake."""

    def dsn(name: str) -> str:
        url = make_url(databases[name]).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    approval, notify = await asyncpg.connect(dsn("approval")), await asyncpg.connect(dsn("notify"))
    try:
        made = {
            r["event_id"]: r["created_at"]
            for r in await approval.fetch(
                "SELECT event_id, created_at FROM outbox_events WHERE destination = 'notify'"
                " ORDER BY created_at DESC LIMIT $1",
                samples,
            )
        }
        written = await notify.fetch(
            "SELECT event_id, min(created_at) AS created_at FROM inbox_messages"
            " WHERE event_id = any($1::text[]) GROUP BY event_id",
            list(made),
        )
    finally:
        await approval.close()
        await notify.close()
    return sorted((r["created_at"] - made[r["event_id"]]).total_seconds() * 1000 for r in written)


async def relay_milliseconds(database_url: str, samples: int) -> list[float]:
    """For the last ``samples`` events to notify: milliseconds from the outbox row's creation (just
    before its commit) to the relay's record that notify took it (after notify's answer)."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT extract(epoch FROM delivered_at - created_at) * 1000 AS ms FROM outbox_events"
            " WHERE destination = 'notify' AND delivered_at IS NOT NULL"
            " ORDER BY created_at DESC LIMIT $1",
            samples,
        )
    finally:
        await connection.close()
    return sorted(float(r["ms"]) for r in rows)


def main() -> None:
    """Run the benchmark."""
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    private, _ = ensure_dev_keypair(work / "keys")
    token = mint_token(private.read_text(), role=Role.ENTERPRISE, uscc=USCC, subject="ent:bench")
    PORTS.update(approval=PORT_BASE + 1, license=PORT_BASE + 2, notify=PORT_BASE + 3)
    if POLL:
        os.environ["APPROVAL_RELAY_POLL_SECONDS"] = POLL
    stack = start_stack(work)
    try:
        asyncio.run(measure(token, WARMUP))
        latencies, responses = asyncio.run(measure(token, SAMPLES))
        latencies.sort()
        relayed = asyncio.run(relay_milliseconds(stack.databases["approval"], SAMPLES))
        to_inbox = asyncio.run(inbox_milliseconds(stack.databases, SAMPLES))
    finally:
        stop_stack(stack)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "relay_poll_seconds": float(POLL) if POLL else 0.2,
        "observed_by": OBSERVE,
        "samples": len(latencies),
        "lost": SAMPLES - len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(percentile(latencies, 0.90), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(latencies[-1], 1),
        # Of which the submission's own response (the rest is the relay and notify).
        "response_p50_ms": round(statistics.median(responses), 1),
        # From the outbox row to notify's answer to the relay (the inbox message is committed).
        "relayed_p50_ms": round(statistics.median(relayed), 1),
        "relayed_p99_ms": round(percentile(relayed, 0.99), 1),
        # From the outbox row to notify's inbox message (then its commit and the stream's push).
        "to_inbox_row_p50_ms": round(statistics.median(to_inbox), 1),
        "to_inbox_row_p99_ms": round(percentile(to_inbox, 0.99), 1),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
