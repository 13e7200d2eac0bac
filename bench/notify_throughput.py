"""Notify throughput: events posted as the outbox relays post them, delivered to inbox and email.

Starts a local SMTP server (aiosmtpd), a stand-in for approval's event endpoint (proof of service),
and notify itself (``notify.main:run``) on loopback with a fresh database; registers an email
address for each test enterprise; posts ``--events`` application events in CloudEvents batches of
``--batch`` with ``--concurrency`` relays at once; then counts

* inbox messages per second (an inbox message commits with the POST that carries its event) and
  the p50/p99 from posting an event to its message being committed;
* emails received by the SMTP server per second and the p50/p99 from posting to receipt.

Bounded: at most ``--events`` events and ``--timeout`` seconds. Prints one JSON document.

    uv run python bench/notify_throughput.py --events 5000
    uv run python bench/notify_throughput.py --database-url postgresql   # a fresh database, dropped after

``make bench-notify`` runs it on SQLite and on PostgreSQL (the server of the tests,
``TEST_DATABASE_URL``) and writes each run's figures to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop
from aiosmtpd.controller import Controller

from govshared.auth import Role, dev_role_key, ensure_dev_keypair, mint_token
from govshared.events import CLOUDEVENTS_BATCH_JSON
from govshared.jwks import audience_of_service
from govshared.testing import create_postgres_database, drop_postgres_database, random_uscc

NUMBER = re.compile(r"BENCH-(\d{8})")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailClock:
    """aiosmtpd handler recording when each event's email arrived."""

    def __init__(self) -> None:
        self.received: dict[int, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the arrival time of the event the email is about."""
        now = time.perf_counter()
        # notify sends a base64 plain-text body; decoding just that keeps the sink cheap.
        _, _, body = bytes(envelope.content).partition(b"\r\n\r\n")
        try:
            text = base64.b64decode(body).decode()
        except ValueError:
            text = message_from_bytes(envelope.content, policy=policy.default).as_string()
        match = NUMBER.search(text)
        if match:
            with self.lock:
                self.received.setdefault(int(match.group(1)), now)
        return "250 OK"


async def approval_stub(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts proof-of-service events like approval's /api/v1/events (and drops them)."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


def event(number: int, uscc: str, event_type: str) -> dict[str, Any]:
    """One application event as approval's relay posts it."""
    now = datetime.now(UTC).isoformat()
    application_id = str(uuid.uuid4())
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/services/approval",
        "type": event_type,
        "subject": application_id,
        "time": now,
        "datacontenttype": "application/json",
        "data": {
            "application_id": application_id,
            "application_no": f"BENCH-{number:08d}",
            "item_code": "JXW-XK-002",
            "item_name": "食盐定点批发企业审批",
            "applicant_uscc": uscc,
            "applicant_name": "上海盐业示范有限公司",
            "jurisdiction": "310000",
            "state": event_type.split(".")[-2],
            "occurred_at": now,
        },
    }


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank), in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return round(ordered[index] * 1000, 1)


async def wait_ready(url: str, deadline: float) -> None:
    """Wait for notify's /readyz."""
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("notify did not become ready")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; the figures."""
    started = time.monotonic()
    deadline = started + args.timeout
    workdir = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    private_key, _ = ensure_dev_keypair(workdir / "keys")
    key = private_key.read_text()
    # Service tokens are signed with the services' development key (trusted for role=service).
    service_key, service_issuer = dev_role_key(workdir / "keys", Role.SERVICE)

    clock = MailClock()
    smtp_port = free_port()
    # The sink is not what is measured: give it the fastest loop available.
    smtp = Controller(clock, loop=uvloop.new_event_loop(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    stub_port = free_port()
    stub = uvicorn.Server(
        uvicorn.Config(approval_stub, host="127.0.0.1", port=stub_port, log_level="warning")
    )
    stub_task = asyncio.create_task(stub.serve())

    notify_port = free_port()
    env = {
        **os.environ,
        "NOTIFY_DATA_DIR": str(workdir),
        "NOTIFY_PORT": str(notify_port),
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(smtp_port),
        "NOTIFY_SMTP_CONNECTIONS": str(args.smtp_connections),
        "NOTIFY_APPROVAL_EVENTS_URL": f"http://127.0.0.1:{stub_port}/api/v1/events",
        "NOTIFY_LOG_LEVEL": "WARNING",
        "NOTIFY_RATE_LIMIT_EMAIL_PER_HOUR": "1000000",
    }
    if args.database_url:
        env["NOTIFY_DATABASE_URL"] = args.database_url
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
            [sys.executable, "-c", "from notify.main import run; run()"],
            env={**env, "NOTIFY_RUN_WORKERS": "false" if args.separate_worker else "true"},
            stdout=subprocess.DEVNULL,
        )
    ]
    base = f"http://127.0.0.1:{notify_port}"
    try:
        await wait_ready(base, deadline)
        if args.separate_worker:
            # Production's shape: web replicas and a worker deployment from the same image.
            processes.append(
                subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured part
                    [sys.executable, "-m", "notify.worker"], env=env, stdout=subprocess.DEVNULL
                )
            )
        enterprises = [random_uscc() for _ in range(args.enterprises)]
        limits = httpx.Limits(max_connections=args.concurrency + 8)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            for chunk in range(0, len(enterprises), 50):
                await asyncio.gather(
                    *(
                        client.put(
                            "/api/v1/preferences",
                            json={"email": f"{uscc.lower()}@bench.example.com"},
                            headers={
                                "Authorization": "Bearer "
                                + mint_token(key, role=Role.ENTERPRISE, uscc=uscc)
                            },
                        )
                        for uscc in enterprises[chunk : chunk + 50]
                    )
                )
            service = {
                "Authorization": f"Bearer {mint_token(service_key, role=Role.SERVICE, subject='service:approval', issuer=service_issuer, audience=audience_of_service('notify'))}",
                "Content-Type": CLOUDEVENTS_BATCH_JSON,
            }
            posted_at: dict[int, float] = {}
            committed_at: dict[int, float] = {}
            queue: asyncio.Queue[list[int]] = asyncio.Queue()
            numbers = list(range(args.events))
            for i in range(0, len(numbers), args.batch):
                queue.put_nowait(numbers[i : i + args.batch])
            errors = 0

            interval = args.batch / args.rate if args.rate else 0.0
            next_start = time.perf_counter()

            async def relay() -> None:
                nonlocal errors, next_start
                while not queue.empty() and time.monotonic() < deadline:
                    if interval:
                        # Paced: one batch every interval across all relays (an open-loop load).
                        start_at = next_start
                        next_start += interval
                        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
                    try:
                        batch = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    body = [
                        event(n, enterprises[n % len(enterprises)], args.event_type) for n in batch
                    ]
                    sent = time.perf_counter()
                    response = await client.post(
                        "/api/v1/events", content=json.dumps(body).encode(), headers=service
                    )
                    done = time.perf_counter()
                    if response.status_code != 200:
                        errors += 1
                        continue
                    for n in batch:
                        posted_at[n] = sent
                        committed_at[n] = done

            first_post = time.perf_counter()
            await asyncio.gather(*(relay() for _ in range(args.concurrency)))
            last_commit = max(committed_at.values(), default=first_post)
            while time.monotonic() < deadline:
                with clock.lock:
                    if len(clock.received) >= len(posted_at):
                        break
                await asyncio.sleep(0.05)
        with clock.lock:
            received = dict(clock.received)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
        stub.should_exit = True
        await stub_task
        smtp.stop()

    inbox_latency = [committed_at[n] - posted_at[n] for n in posted_at]
    email_latency = [received[n] - posted_at[n] for n in received if n in posted_at]
    last_email = max(received.values(), default=first_post)
    inbox_seconds = max(last_commit - first_post, 1e-9)
    email_seconds = max(last_email - first_post, 1e-9)
    return {
        "database": "postgresql" if args.database_url else "sqlite",
        "event_type": args.event_type,
        "events_posted": len(posted_at),
        "batch_size": args.batch,
        "relays": args.concurrency,
        "offered_rate": args.rate or "max",
        "separate_worker": args.separate_worker,
        "post_errors": errors,
        "inbox": {
            "delivered": len(posted_at),
            "per_second": round(len(posted_at) / inbox_seconds, 1),
            "p50_ms": percentile(inbox_latency, 0.50),
            "p99_ms": percentile(inbox_latency, 0.99),
        },
        "email": {
            "delivered": len(email_latency),
            "per_second": round(len(email_latency) / email_seconds, 1),
            "p50_ms": percentile(email_latency, 0.50),
            "p99_ms": percentile(email_latency, 0.99),
        },
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "mean_inbox_batch_ms": round(statistics.fmean(inbox_latency) * 1000, 1)
        if inbox_latency
        else None,
    }


def main() -> None:
    """Parse arguments, run, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events to post (bound)")
    parser.add_argument("--batch", type=int, default=100, help="events per POST, as the relays")
    parser.add_argument("--concurrency", type=int, default=4, help="relays posting at once")
    parser.add_argument("--enterprises", type=int, default=200)
    parser.add_argument("--smtp-connections", type=int, default=4)
    parser.add_argument(
        "--event-type", default="cn.gov.approval.application.accepted.v1", help="what to post"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events per second to offer; 0: as fast as possible"
    )
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="run the delivery worker and relay as their own process (python -m notify.worker)",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty database; 'postgresql': a fresh one on the tests' server; default SQLite",
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds (bound)")
    args = parser.parse_args()
    fresh = args.database_url == "postgresql"
    if fresh:
        args.database_url = asyncio.run(create_postgres_database("bench_notify"))
    try:
        result = uvloop.run(run(args))
    finally:
        if fresh:
            asyncio.run(drop_postgres_database(args.database_url))
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    results = Path(__file__).resolve().parent / "results"
    name = f"notify-{result['database']}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    (results / name).write_text(text)


if __name__ == "__main__":
    main()
