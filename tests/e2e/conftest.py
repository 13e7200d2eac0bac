"""Start license, notify and approval as processes, each on its own database of the backend."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from govshared.testing import BACKENDS, Tokens, drop_postgres_database, make_database
from tools.suite import SERVICES, ServiceProcess, suite_env


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Suite:
    """The running suite."""

    processes: dict[str, ServiceProcess]
    tokens: Tokens

    def url(self, name: str) -> str:
        """Base URL of a service."""
        return self.processes[name].url


@pytest.fixture(scope="module", params=BACKENDS)
async def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Suite]:
    """The three services running on the backend, migrated and seeded by their own start-up."""
    work: Path = tmp_path_factory.mktemp(f"suite-{request.param}")
    tokens = Tokens(work / "keys")
    ports = {name: free_port() for name in SERVICES}
    envs = suite_env(data_dir=work, ports=ports)
    urls: dict[str, str] = {}
    processes: dict[str, ServiceProcess] = {}
    for name, (_, prefix, _) in SERVICES.items():
        urls[name] = await make_database(request.param, prefix=f"e2e_{name}", directory=work)
        env = {
            **envs[name],
            f"{prefix}DATABASE_URL": urls[name],
            **tokens.environment(prefix),
            f"{prefix}RELAY_POLL_SECONDS": "0.2",
            f"{prefix}REFORM_MODE_CACHE_SECONDS": "0",
        }
        processes[name] = ServiceProcess(name, ports[name], env, log_path=work / f"{name}.log")
    try:
        for proc in processes.values():
            proc.start()
        for proc in processes.values():
            await asyncio.to_thread(proc.wait_ready)
        yield Suite(processes=processes, tokens=tokens)
    finally:
        for proc in processes.values():
            proc.stop()
        if request.param == "postgresql":
            for url in urls.values():
                await drop_postgres_database(url)
