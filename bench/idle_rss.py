"""``make bench-rss``: each service's resident memory once started and idle, as ``make run`` runs it.

Starts the three services exactly as ``make run`` does (``python -m <service>.main``, SQLite in a
fresh data folder, workers in process, the demo catalogue loaded), waits until each answers
``/readyz``, lets them settle, and prints each process's RSS (and its unique set size, USS, what
stopping it would free). With ``--modules`` it also lists, per service, the largest top-level
packages imported by then (counted by their modules), to find what is loaded before it is needed.
Prints the figures and writes them to ``bench/results/``. Asserts nothing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.suite import SERVICES, ServiceProcess, suite_env  # noqa: E402

PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "18200"))
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "3"))


def memory_mb(pid: int) -> dict[str, float]:
    """RSS and USS (private pages: what the process alone holds) in MB."""
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    private = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            private += int(line.split()[1])
    return {"rss_mb": round(rss / 1024, 1), "uss_mb": round(private / 1024, 1)}


def imported_packages(module: str, top: int = 15) -> list[tuple[str, int]]:
    """The top-level packages ``module`` imports (with what its app factory builds), by module
    count, in a fresh interpreter."""
    import subprocess

    code = (
        "import sys, collections, json, importlib;"
        f"m = importlib.import_module({module!r}); m.create_app();"
        "c = collections.Counter(n.split('.')[0] for n in sys.modules);"
        f"print(json.dumps(c.most_common({top})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return [(name, count) for name, count in json.loads(out.strip().splitlines()[-1])]


def main() -> None:
    """Start, measure, stop."""
    work = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    ports = {name: PORT_BASE + i for i, name in enumerate(SERVICES, start=1)}
    envs = suite_env(data_dir=work, ports=ports)
    procs = [
        ServiceProcess(name, ports[name], envs[name], log_path=work / f"{name}.log")
        for name in SERVICES
    ]
    figures: dict[str, dict[str, float]] = {}
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready(timeout=600)
        time.sleep(SETTLE_SECONDS)
        for proc in procs:
            assert proc.process is not None
            figures[proc.name] = memory_mb(proc.process.pid)
    finally:
        for proc in procs:
            proc.stop()
    result: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "idle": figures,
    }
    if "--modules" in sys.argv:
        result["imported_packages"] = {
            name: imported_packages(module) for name, (module, _, _) in SERVICES.items()
        }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    out = ROOT / "bench" / "results" / f"idle-rss-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
