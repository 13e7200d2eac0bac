"""Start the three services as real processes on loopback, wait until ready, stop them cleanly.

``python -m tools.suite run`` is what ``make run`` calls; the cross-service tests and the benchmarks
use ``ServiceProcess`` to run the very same processes.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

SERVICES = {
    # name: (module, env prefix, default port)
    "approval": ("approval.main", "APPROVAL_", 8001),
    "license": ("licensing.main", "LICENSE_", 8002),
    "notify": ("notify.main", "NOTIFY_", 8003),
}


@dataclass
class ServiceProcess:
    """One service running as ``python -m <module>`` with settings given as environment."""

    name: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    command: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Spawn the process (its output goes to the log file, or is inherited)."""
        module, prefix, _ = SERVICES[self.name]
        env = {
            **os.environ,
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(self.port),
            **self.env,
        }
        out = self.log_path.open("ab") if self.log_path else None
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command or [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll ``/readyz`` until it answers 200 (raises with the log tail otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}{self._tail()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready on {self.url} after {timeout}s{self._tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after ``timeout``); the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return "\n--- log tail ---\n" + self.log_path.read_text(errors="replace")[-3000:]
        return ""


def suite_env(*, data_dir: Path, ports: dict[str, int]) -> dict[str, dict[str, str]]:
    """Each service's environment so that the three find each other on loopback.

    Every public URL (verification links and QR codes in sealed PDFs, licences' ``qr_url``,
    download links in messages) derives from one setting per service, filled here from the ports.
    """
    approval, license_, notify = (f"http://127.0.0.1:{ports[n]}" for n in SERVICES)
    common = {"DATA_DIR": str(data_dir)}
    return {
        "approval": {
            **{f"APPROVAL_{k}": v for k, v in common.items()},
            "APPROVAL_PUBLIC_BASE_URL": approval,
            "APPROVAL_LICENSE_URL": license_,
            "APPROVAL_LICENSE_EVENTS_URL": f"{license_}/api/v1/events",
            "APPROVAL_NOTIFY_EVENTS_URL": f"{notify}/api/v1/events",
        },
        "license": {
            **{f"LICENSE_{k}": v for k, v in common.items()},
            "LICENSE_PUBLIC_BASE_URL": license_,
            "LICENSE_NOTIFY_EVENTS_URL": f"{notify}/api/v1/events",
            "LICENSE_APPROVAL_URL": approval,
        },
        "notify": {
            **{f"NOTIFY_{k}": v for k, v in common.items()},
            "NOTIFY_APPROVAL_EVENTS_URL": f"{approval}/api/v1/events",
            "NOTIFY_LICENSE_EVENTS_URL": f"{license_}/api/v1/events",
            # Sealed PDFs are fetched from their issuer to be attached to emails.
            "NOTIFY_APPROVAL_URL": approval,
            "NOTIFY_LICENSE_URL": license_,
            "NOTIFY_APPROVAL_PUBLIC_URL": approval,
            "NOTIFY_LICENSE_PUBLIC_URL": license_,
        },
    }


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run(data_dir: Path) -> int:
    """Start all three, print where they are, and stop them all on Ctrl-C."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = {
        name: int(os.environ.get(f"{prefix}PORT", default))
        for name, (_, prefix, default) in SERVICES.items()
    }
    envs = suite_env(data_dir=data_dir.resolve(), ports=ports)
    procs = [
        ServiceProcess(name, ports[name], envs[name], log_path=data_dir / f"{name}.log")
        for name in SERVICES
    ]
    busy = [f"{name}:{port}" for name, port in ports.items() if _in_use(port)]
    if busy:
        print(
            f"ports already in use: {', '.join(busy)} (is the suite already running?)",
            file=sys.stderr,
        )
        return 1
    stopping = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready()
        print(f"\n一网通办 approvals suite is running (SQLite in {data_dir.resolve()}):\n")
        for proc in procs:
            print(f"  {proc.name:<9} {proc.url}   docs: {proc.url}/docs   logs: {proc.log_path}")
        print(
            "\nA token:  make token role=enterprise uscc=91350100M000100Y43\nStop:     Ctrl-C\n",
            flush=True,
        )
        while not stopping and all(p.process and p.process.poll() is None for p in procs):
            time.sleep(0.3)
        dead = [p.name for p in procs if p.process and p.process.poll() is not None]
        if dead and not stopping:
            print(f"stopped: {', '.join(dead)} exited; see the logs in {data_dir}", file=sys.stderr)
            return 1
        return 0
    finally:
        for proc in procs:
            proc.stop()
        print("all services stopped.")


def main() -> None:
    """CLI."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the three services on SQLite")
    run_parser.add_argument("--data-dir", default=os.environ.get("SUITE_DATA_DIR", "data"))
    args = parser.parse_args()
    sys.exit(run(Path(args.data_dir)))


if __name__ == "__main__":
    main()
