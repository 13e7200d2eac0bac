"""The three services as real processes on PostgreSQL, in both production layouts, for fault tests.

``web-with-workers``: each web process runs its relay and timers (``RUN_WORKERS=true``, the
embedded default). ``separate-worker``: web with ``RUN_WORKERS=false`` beside a
``python -m <package>.worker`` process, as the manifests deploy them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from govshared.testing import Tokens, drop_postgres_database, make_database, problem
from tests.e2e.conftest import free_port
from tools.suite import SERVICES, ServiceProcess, suite_env

LAYOUTS = ("web-with-workers", "separate-worker")
# Short enough that a test sees the pause end and the backlog drain within its few seconds.
RELAY_PROBE_MAX_SECONDS = 2.0
RETRY_AFTER_SECONDS = 1


@dataclass
class FaultSuite:
    """The running suite, its databases and its processes."""

    layout: str
    web: dict[str, ServiceProcess]
    workers: dict[str, ServiceProcess]
    databases: dict[str, str]  # SQLAlchemy URLs
    tokens: Tokens

    def url(self, name: str) -> str:
        """Base URL of a service."""
        return self.web[name].url

    async def query(self, name: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of a query on a service's database (read by the test, beside the service)."""
        conn = await asyncpg.connect(self.databases[name].replace("+asyncpg", ""), timeout=5)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    def logs(self, name: str) -> str:
        """What a service's processes printed."""
        procs = [self.web[name], *([self.workers[name]] if name in self.workers else [])]
        return "".join(
            p.log_path.read_text(errors="replace")
            for p in procs
            if p.log_path and p.log_path.exists()
        )


@pytest.fixture(scope="package", params=LAYOUTS)
async def faulty(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultSuite]:
    """The suite on PostgreSQL in the layout, migrated by its own start-up."""
    layout: str = request.param
    work: Path = tmp_path_factory.mktemp(f"faults-{layout}")
    tokens = Tokens(work / "keys")
    ports = {name: free_port() for name in SERVICES}
    envs = suite_env(data_dir=work, ports=ports)
    databases: dict[str, str] = {}
    web: dict[str, ServiceProcess] = {}
    workers: dict[str, ServiceProcess] = {}
    for name, (module, prefix, _) in SERVICES.items():
        databases[name] = await make_database("postgresql", prefix=f"faults_{name}", directory=work)
        env = {
            **envs[name],
            f"{prefix}DATABASE_URL": databases[name],
            **tokens.environment(prefix),
            f"{prefix}RELAY_POLL_SECONDS": "0.2",
            f"{prefix}RELAY_PROBE_MAX_SECONDS": str(RELAY_PROBE_MAX_SECONDS),
            f"{prefix}DB_TIMEOUT_SECONDS": "2",
            f"{prefix}DB_RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
            f"{prefix}DB_POOL_SIZE": "8",
            f"{prefix}RUN_WORKERS": "true" if layout == "web-with-workers" else "false",
            f"{prefix}LOG_LEVEL": "WARNING",
        }
        web[name] = ServiceProcess(name, ports[name], env, log_path=work / f"{name}.log")
        if layout == "separate-worker":
            package = module.split(".")[0]
            # The worker serves /metrics once it runs: how the fixture knows it is up.
            metrics_port = free_port()
            workers[name] = ServiceProcess(
                name,
                metrics_port,
                {
                    **env,
                    f"{prefix}MIGRATE_ON_START": "false",
                    f"{prefix}WORKER_METRICS_PORT": str(metrics_port),
                },
                log_path=work / f"{name}-worker.log",
                command=[sys.executable, "-m", f"{package}.worker"],
            )
    try:
        for proc in web.values():
            proc.start()
        for proc in web.values():
            await asyncio.to_thread(proc.wait_ready, 180.0)
        for proc in workers.values():  # after the web processes have migrated their databases
            proc.start()
        for proc in workers.values():
            await asyncio.to_thread(_wait_for_metrics, proc, 180.0)
        yield FaultSuite(layout, web, workers, databases, tokens)
    finally:
        for proc in [*workers.values(), *web.values()]:
            proc.stop()
        for url in databases.values():
            await drop_postgres_database(url)


def _wait_for_metrics(worker: ServiceProcess, timeout: float) -> None:
    """Wait until a worker process serves its metrics (it has started its loops)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process is not None and worker.process.poll() is None, "worker exited"
        try:
            if httpx.get(f"{worker.url}/metrics", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{worker.name} worker not up after {timeout} s")


@dataclass
class Outcome:
    """One request of the load: when it went and came back, and what came back."""

    client: str
    sent: float
    done: float
    status: int | None = None  # None: no response at all (a reset, a timeout)
    code: str | None = None
    retry_after: str | None = None
    content_type: str = ""
    body: Any = None
    error: str | None = None


@dataclass
class Load:
    """A few clients, each on one keep-alive connection, sending requests until stopped."""

    outcomes: list[Outcome] = field(default_factory=list)
    connects: dict[str, int] = field(default_factory=dict)  # TCP connections each client opened
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(
        self, name: str, request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    ) -> None:
        """Run a client that sends ``request`` again and again."""
        self.connects[name] = 0

        async def trace(event: str, _info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                self.connects[name] += 1

        async def loop() -> None:
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            async with httpx.AsyncClient(timeout=10, limits=limits) as client:
                client.event_hooks["request"].append(_traced(trace))
                while not self._stop.is_set():
                    sent = time.monotonic()
                    try:
                        response = await request(client)
                    except httpx.HTTPError as exc:
                        self.outcomes.append(
                            Outcome(
                                name, sent, time.monotonic(), error=f"{type(exc).__name__}: {exc}"
                            )
                        )
                    else:
                        self.outcomes.append(_outcome(name, sent, response))
                    await asyncio.sleep(0.02)  # a small load: a few dozen requests a second

        self._tasks.append(asyncio.create_task(loop()))

    async def stop(self) -> None:
        """Let each client finish its request in flight."""
        self._stop.set()
        await asyncio.gather(*self._tasks)


def _traced(
    trace: Callable[[str, dict[str, Any]], Awaitable[None]],
) -> Callable[[httpx.Request], Awaitable[None]]:
    async def hook(request: httpx.Request) -> None:
        request.extensions["trace"] = trace

    return hook


def _outcome(client: str, sent: float, response: httpx.Response) -> Outcome:
    content_type = response.headers.get("content-type", "")
    body = response.json() if "json" in content_type else None
    return Outcome(
        client,
        sent,
        time.monotonic(),
        status=response.status_code,
        code=problem(response).get("code") if content_type == "application/problem+json" else None,
        retry_after=response.headers.get("retry-after"),
        content_type=content_type,
        body=body,
    )


async def wait_until(predicate: Callable[[], Awaitable[bool]], within: float) -> float:
    """Poll until ``predicate`` holds; the seconds it took (fails after ``within``)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within} s")
