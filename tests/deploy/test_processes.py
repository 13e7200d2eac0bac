"""The image's commands as real processes: worker mode, the migration one-off, and graceful
shutdown on SIGTERM (exit 0 within seconds, as Kubernetes and compose expect)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from govshared.app import known_migrations
from govshared.migrate import upgrade

from .support import ROOT, SERVICES, ServiceInfo, run

SIGTERM_DEADLINE = 10.0


def _env(service: ServiceInfo, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a service process on SQLite in ``tmp_path`` (no other service's vars)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APPROVAL_", "LICENSE_", "NOTIFY_"))
    }
    env[f"{service.prefix}DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    env[f"{service.prefix}DATA_DIR"] = str(tmp_path / "data")
    env[f"{service.prefix}ENVIRONMENT"] = "test"
    env[f"{service.prefix}MIGRATE_ON_START"] = "false"
    env[f"{service.prefix}LOG_JSON"] = "true"
    for key, value in settings.items():
        env[f"{service.prefix}{key}"] = value
    return env


def _handles_sigterm(pid: int) -> bool:
    """True once the process has installed a SIGTERM handler (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _stop(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        code = process.wait(timeout=SIGTERM_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"still running {SIGTERM_DEADLINE}s after SIGTERM:\n{log.read_text()[-3000:]}")
    assert time.monotonic() - started < SIGTERM_DEADLINE
    return code


def _migrated(service: ServiceInfo, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(exist_ok=True)
    upgrade(service.alembic_ini, f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_worker_mode_stops_cleanly_on_sigterm(service: ServiceInfo, tmp_path: Path) -> None:
    worker_module = ROOT / "services" / service.name / "src" / service.package / "worker.py"
    assert worker_module.exists(), f"python -m {service.package}.worker: the module is missing"
    _migrated(service, tmp_path)
    log = tmp_path / "worker.log"
    metrics_port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"{service.package}.worker"],
            env=_env(
                service, tmp_path, RELAY_POLL_SECONDS="0.1", WORKER_METRICS_PORT=str(metrics_port)
            ),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _handles_sigterm(process.pid):
            assert process.poll() is None, f"worker exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "worker never installed its SIGTERM handler"
            time.sleep(0.05)
        time.sleep(0.5)  # let the relay (and timers) poll at least once
        assert process.poll() is None, f"worker exited early:\n{log.read_text()[-3000:]}"
        # The worker's own metrics (scraped from worker pods: the web replicas run no relay).
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert "outbox_delivered_total" in metrics and "outbox_pending" in metrics
        code = _stop(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert code == 0, f"exit code {code}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_migration_one_off_reaches_head(service: ServiceInfo, tmp_path: Path) -> None:
    """The Job's and compose's command, with the repository in place of /app."""
    (tmp_path / "data").mkdir()
    alembic = Path(sys.executable).parent / "alembic"
    result = run(
        [str(alembic), "-c", str(service.alembic_ini), "upgrade", "head"],
        env=_env(service, tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "service.db") as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == known_migrations(service.alembic_ini).head


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_web_mode_ready_then_stops_cleanly_on_sigterm(service: ServiceInfo, tmp_path: Path) -> None:
    """The image's default CMD with the web replica's settings (no workers, migrations done)."""
    _migrated(service, tmp_path)
    port = _free_port()
    env = _env(service, tmp_path, HOST="127.0.0.1", PORT=str(port), RUN_WORKERS="false")
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"{service.package}.main"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"web exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"never ready:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        code = _stop(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    # uvicorn finishes in-flight requests and the lifespan, then re-raises the signal so that the
    # exit status says SIGTERM (143 in a shell, -15 here): both are a clean stop.
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{output[-3000:]}"
    assert "Application shutdown complete." in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
