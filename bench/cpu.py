"""CPU accounting of the benchmarks, read from ``/proc`` and PostgreSQL's statistics: a process
and its descendants, the PostgreSQL backends serving the bench's databases, the whole machine.
CPU seconds per request or per case are steadier from run to run than the rates are."""

from __future__ import annotations

import asyncio
import os
import resource
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_parents() -> dict[int, int]:
    """Every process: pid → parent pid."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                rest = (entry / "stat").read_text().rsplit(")", 1)[1]
            except OSError:
                continue
            found[int(entry.name)] = int(rest.split()[1])
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def family(pid: int, parents: dict[int, int]) -> set[int]:
    """A process and its descendants."""
    family = {pid}
    grew = True
    while grew:
        before = len(family)
        family |= {child for child, parent in parents.items() if parent in family}
        grew = len(family) > before
    return family


def database_state(database_urls: list[str]) -> tuple[list[int], dict[str, int]]:
    """The PostgreSQL backends connected to these databases (the app's pool, its NOTIFY
    connection), from ``pg_stat_activity``, and the databases' counters of committed transactions
    and inserted rows (``pg_stat_database``, which backends report at most a second late)."""
    if not database_urls:
        return [], {}
    first = make_url(database_urls[0]).set(drivername="postgresql")
    names = [make_url(u).database for u in database_urls]

    async def state() -> tuple[list[int], dict[str, int]]:
        conn = await asyncpg.connect(first.render_as_string(hide_password=False))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[]) "
                "AND pid <> pg_backend_pid()",
                names,
            )
            counters = await conn.fetchrow(
                "SELECT sum(xact_commit)::bigint AS transactions, "
                "sum(tup_inserted)::bigint AS rows_inserted, "
                "sum(sessions)::bigint AS connections_opened "
                "FROM pg_stat_database WHERE datname = ANY($1::text[])",
                names,
            )
        finally:
            await conn.close()
        return [int(r[0]) for r in rows], {k: int(v or 0) for k, v in counters.items()}

    return asyncio.run(state())


def cpu_snapshot(app_pid: int, databases: list[str] | None = None) -> dict[str, Any]:
    """CPU seconds so far of the app (the process ``app_pid`` and its descendants), of the
    PostgreSQL backends serving ``databases`` (each by pid: one that comes between two snapshots
    counts whole, its start included; one that goes between them is missed), of wrk (this process's finished children) and of
    the whole machine (the app, PostgreSQL, wrk and anything else running)."""
    parents = process_parents()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    backends, counters = database_state(databases or [])
    return {
        "app": sum(cpu_seconds(pid) for pid in family(app_pid, parents)),
        "backends": {pid: cpu_seconds(pid) for pid in backends},
        "database": counters,
        "wrk": children.ru_utime + children.ru_stime,
        "machine": machine_busy_seconds(),
    }


def cpu_per_request(
    before: dict[str, Any], after: dict[str, Any], requests: int
) -> dict[str, float]:
    """CPU milliseconds per request of each part between two ``cpu_snapshot``s; ``other`` is the
    machine's rest (the kernel's softirqs, PostgreSQL's WAL writer, anything else running)."""
    backends = sum(
        seconds - before["backends"].get(pid, seconds) for pid, seconds in after["backends"].items()
    )
    parts = {
        "app": after["app"] - before["app"],
        "postgres_backends": backends,
        "wrk": after["wrk"] - before["wrk"],
        "machine": after["machine"] - before["machine"],
    }
    parts["other"] = parts["machine"] - parts["app"] - parts["postgres_backends"] - parts["wrk"]
    found: dict[str, float] = {
        f"{k}_cpu_ms_per_request": round(v * 1000 / requests, 3) for k, v in parts.items()
    }
    # Transactions (the request's own, and the NOTIFYs that wake the relay), rows, and the
    # connections the app's pool opened (each a PostgreSQL backend started), per request.
    for key, value in after["database"].items():
        found[f"{key}_per_request"] = round((value - before["database"][key]) / requests, 2)
    return found


def postgres_cpu(databases: list[str]) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to ``databases`` (a backend's
    command line names its database; backends that ended before are not counted)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres: ") or not any(d in title for d in databases):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total
