"""``make bench-rss``: each service's resident memory once started and idle, as ``make run`` runs it.

Starts the three services exactly as ``make run`` does (``python -m <service>.main``, SQLite in a
fresh data folder, migrations at start, workers in process, the demo catalogue loaded), waits until
each answers ``/readyz``, lets them settle, and prints each process's RSS (and its unique set size,
USS, what stopping it would free), in two environments:

* ``dev``: this checkout's ``.venv``, development dependencies included (what ``make run`` uses);
* ``production-like``: each service in a virtual environment of its own made as its image's
  builder makes it (``uv sync --locked --no-dev --package <service>``: no test tools, no other
  service's dependencies), with the same settings as ``make run``. Only the environment differs.

With ``--modules`` it also lists, per service and environment, the largest top-level packages
imported once the app has started (its lifespan run, in a fresh interpreter), by module count; with
``--maps`` the largest memory mappings of each process (shared libraries, the heap). Prints the
figures and writes them to ``bench/results/``. Asserts nothing.

``--env dev`` (or ``production-like``) measures one environment only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.suite import SERVICES, ServiceProcess, suite_env  # noqa: E402

PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "18200"))
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "3"))
DISTRIBUTIONS = {
    "approval": "approval-service",
    "license": "license-service",
    "notify": "notify-service",
}
ENVIRONMENTS = ("dev", "production-like")
# uv as `make` runs it (python3 -m uv): the environment's own interpreter has none.
UV = [sys._base_executable, "-m", "uv"]
PYTHON = sys._base_executable  # the interpreter the environments are made with


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


def largest_mappings(pid: int, top: int = 12) -> list[tuple[str, float]]:
    """RSS in MB by what is mapped (a shared library by its file name, ``[anon]`` for the heap and
    the interpreter's arenas), largest first."""
    by_name: Counter[str] = Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].endswith(":"):  # a mapping's header line
            path = fields[5] if len(fields) > 5 else ""
            name = Path(path).name if path.startswith("/") else (path or "[anon]")
        elif fields and fields[0] == "Rss:":
            by_name[name] += int(fields[1])
    return [(n, round(kb / 1024, 1)) for n, kb in by_name.most_common(top)]


def production_like_pythons(work: Path) -> dict[str, str]:
    """One virtual environment per service, as its Dockerfile's builder stage makes it."""
    pythons = {}
    for name, dist in DISTRIBUTIONS.items():
        venv = work / f"venv-{name}"
        subprocess.run(
            [*UV, "sync", "--locked", "--no-dev", "--quiet", "--package", dist, "--python", PYTHON],
            check=True,
            cwd=ROOT,
            env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
        )
        pythons[name] = str(venv / "bin" / "python")
    return pythons


def imported_packages(python: str, module: str, env: dict[str, str], top: int = 15) -> list[Any]:
    """The top-level packages a service has imported once its app has started (lifespan run), by
    module count, in a fresh interpreter."""
    code = (
        "import asyncio, collections, importlib, json, sys\n"
        f"app = importlib.import_module({module!r}).create_app()\n"
        "async def started():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        pass\n"
        "asyncio.run(started())\n"
        "c = collections.Counter(n.split('.')[0] for n in sys.modules)\n"
        f"print(json.dumps(c.most_common({top})))"
    )
    out = subprocess.run(
        [python, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    ).stdout
    return [(name, count) for name, count in json.loads(out.strip().splitlines()[-1])]


def measure(
    environment: str, pythons: dict[str, str], work: Path, args: argparse.Namespace
) -> dict[str, object]:
    """Start the three services with these interpreters, measure them idle, stop them."""
    data = work / f"data-{environment}"
    ports = {name: PORT_BASE + i for i, name in enumerate(SERVICES, start=1)}
    envs = suite_env(data_dir=data, ports=ports)
    procs = [
        ServiceProcess(
            name,
            ports[name],
            envs[name],
            log_path=work / f"{environment}-{name}.log",
            command=[pythons[name], "-m", module],
        )
        for name, (module, _, _) in SERVICES.items()
    ]
    figures: dict[str, dict[str, Any]] = {}
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready(timeout=600)
        time.sleep(SETTLE_SECONDS)
        for proc in procs:
            assert proc.process is not None
            figures[proc.name] = memory_mb(proc.process.pid)
            if args.maps:
                figures[proc.name]["largest_mappings_mb"] = largest_mappings(proc.process.pid)
    finally:
        for proc in procs:
            proc.stop()
    result: dict[str, object] = {"idle": figures}
    if args.modules:
        module_envs = suite_env(data_dir=work / f"modules-{environment}", ports=ports)
        result["imported_packages"] = {
            name: imported_packages(pythons[name], module, module_envs[name])
            for name, (module, _, _) in SERVICES.items()
        }
    return result


def main() -> None:
    """Make the environments, start, measure, stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", choices=ENVIRONMENTS, action="append", help="default: both")
    parser.add_argument("--modules", action="store_true", help="packages imported once started")
    parser.add_argument("--maps", action="store_true", help="largest memory mappings")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    result: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
    }
    for environment in args.env or ENVIRONMENTS:
        if environment == "dev":
            pythons = dict.fromkeys(SERVICES, sys.executable)
        else:
            pythons = production_like_pythons(work)
        result[environment] = measure(environment, pythons, work, args)
        print(environment, json.dumps(result[environment], ensure_ascii=False), flush=True)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    out = ROOT / "bench" / "results" / f"idle-rss-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
