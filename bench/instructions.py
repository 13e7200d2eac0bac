"""Instructions per request, counted by callgrind: a measure that does not drift with the machine.

Throughput on these shared 2-core machines moves by a fifth from minute to minute for the same code;
an instruction count does not. This runs approval's app in process (no HTTP server: the ASGI app is
called directly, against a real PostgreSQL and a running license) under ``valgrind --tool=callgrind``
with counting switched on only around the measured requests, one at a time, and prints the
instructions each kind of request executes in the Python process: the submission (without and
with an ``Idempotency-Key``), the lifecycle actions (accept, review, approve) and the two
denominators of ``make bench`` (the bare-ORM endpoint and raw asyncpg). Writes
``bench/results/instructions-*.json``. Needs valgrind (Debian's package, installed if missing).

Use it to compare two versions of the code; it leaves out what the server, the kernel and
PostgreSQL do, which ``make bench`` and ``make bench-lifecycle`` include.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "40"))  # measured per kind, after 5 unmeasured
STEPS = (
    "submission",
    "submission_keyed",
    "accept",
    "review",
    "approve",
    "bare_orm_ceiling",
    "raw_asyncpg",
)


def ensure_valgrind() -> None:
    """valgrind from Debian's packages (installed if missing)."""
    if shutil.which("valgrind") and shutil.which("callgrind_control"):
        return
    print("installing valgrind (Debian package) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "valgrind"], check=True)


async def call(
    app: Any, state: dict[str, Any], path: str, token: str | None, body: str, key: str = ""
) -> bytes:
    """One POST through the ASGI app, as uvicorn would make it (with ``key``, an
    ``Idempotency-Key``); the response body."""
    raw = body.encode()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    if key:
        headers.append((b"idempotency-key", key.encode()))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8001),
        "state": dict(state),
    }
    sent = False
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the request runs
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    if answer["status"] >= 300:
        raise RuntimeError(f"{path}: {answer['status']} {answer['body'][:300]!r}")
    return bytes(answer["body"])


def callgrind(*args: str) -> None:
    """Tell the callgrind this process runs under to do something (-z zero, -i on/off, -d dump)."""
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


async def counted(name: str, requests: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the first five uncounted, the rest counted (one at a time); dump them as ``name``."""
    for request in requests[:5]:
        await request()
    callgrind("-z")
    callgrind("-i", "on")
    results = [await request() for request in requests[5:]]
    callgrind("-i", "off")
    callgrind("-d", name)
    return results


async def measure(settings: dict[str, Any]) -> None:
    """Inside valgrind: the requests of each step, counted."""
    from approval.main import create_app
    from bench.bare_app import create_app as create_bare_app
    from bench.bare_app import create_raw_app
    from bench.submission import ACCEPT_BODY, BODY

    tokens: dict[str, str] = settings["tokens"]
    body = json.dumps(BODY, ensure_ascii=False)
    app, bare, raw = create_app(), create_bare_app(), create_raw_app()
    n = REQUESTS + 5
    async with (
        app.router.lifespan_context(app) as state,
        bare.router.lifespan_context(bare) as bs,
        raw.router.lifespan_context(raw) as rs,
    ):
        state, bs, rs = dict(state or {}), dict(bs or {}), dict(rs or {})

        def submit() -> Awaitable[bytes]:
            return call(app, state, "/api/v1/applications", tokens["enterprise"], body)

        made = await counted("submission", [submit] * n)
        await counted(
            "submission_keyed",
            [
                partial(
                    call, app, state, "/api/v1/applications", tokens["enterprise"], body, f"k{i}"
                )
                for i in range(n)
            ],
        )
        # Five more cases for the uncounted first requests of each action.
        ids = [json.loads(await submit())["id"] for _ in range(5)]
        ids += [json.loads(m)["id"] for m in made]
        for step, role, action_body in (
            ("accept", "acceptor", json.dumps(ACCEPT_BODY, ensure_ascii=False)),
            ("review", "reviewer", '{"opinion":"材料齐全，符合条件"}'),
            ("approve", "approver", '{"opinion":"同意"}'),
        ):
            path = "/api/v1/applications/{}/" + step
            await counted(
                step,
                [partial(call, app, state, path.format(i), tokens[role], action_body) for i in ids],
            )
        await counted("bare_orm_ceiling", [partial(call, bare, bs, "/things", None, body)] * n)
        await counted("raw_asyncpg", [partial(call, raw, rs, "/things", None, body)] * n)


def totals(directory: Path) -> dict[str, float]:
    """Instructions per request of each dump, in millions."""
    found: dict[str, float] = {}
    for dump in directory.glob("callgrind.out.*"):
        text = dump.read_text(errors="replace")
        name = next(
            line.split("dump ", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("desc: Trigger:")
        )
        annotated = subprocess.run(
            ["callgrind_annotate", str(dump)], check=True, capture_output=True, text=True
        ).stdout
        line = next(x for x in annotated.splitlines() if "PROGRAM TOTALS" in x)
        found[name] = round(int(line.split()[0].replace(",", "")) / REQUESTS / 1e6, 3)
    return found


def main() -> None:
    """Start the stack, run the counted process under callgrind, print and save the figures."""
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        import uvloop

        settings = json.loads(Path(sys.argv[2]).read_text())
        os.environ.update(settings["env"])  # before the apps read their settings
        uvloop.run(measure(settings))
        return
    ensure_valgrind()
    from bench.bare_app import create_schema
    from bench.submission import PORTS, USCC, start_stack, stop_stack
    from govshared.auth import Role, ensure_dev_keypair, mint_token
    from govshared.testing import create_postgres_database, drop_postgres_database
    from tools.suite import suite_env

    work = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    private = ensure_dev_keypair(work / "keys")[0].read_text()
    tokens = {
        "enterprise": mint_token(private, role=Role.ENTERPRISE, uscc=USCC, subject="ent:b"),
        "acceptor": mint_token(private, role=Role.ACCEPTOR, jurisdiction="310000", subject="s:a"),
        "reviewer": mint_token(private, role=Role.REVIEWER, jurisdiction="310000", subject="s:r"),
        "approver": mint_token(private, role=Role.APPROVER, jurisdiction="310000", subject="s:p"),
    }
    stack = start_stack(work, relay=False)
    bare_db = asyncio.run(create_postgres_database("bench_bare"))
    try:
        asyncio.run(create_schema(bare_db))
        approval = next(p for p in stack.processes if p.port == PORTS["approval"])
        approval.stop()  # the app runs in the counted process instead
        env = {
            **suite_env(data_dir=work, ports=PORTS)["approval"],
            "APPROVAL_DATABASE_URL": stack.databases["approval"],
            "APPROVAL_RUN_WORKERS": "false",
            "APPROVAL_LOAD_DEMO_CATALOGUE": "false",
            "APPROVAL_MIGRATE_ON_START": "false",
            "APPROVAL_LOG_LEVEL": "WARNING",
            "BARE_DATABASE_URL": bare_db,
        }
        settings = work / "settings.json"
        settings.write_text(json.dumps({"env": env, "tokens": tokens}))
        dumps = work / "callgrind"
        dumps.mkdir()
        print(f"counting {REQUESTS} requests of each kind under callgrind ...", flush=True)
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={dumps}/callgrind.out",
                sys.executable,
                str(Path(__file__).resolve()),
                "--measure",
                str(settings),
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(work / "valgrind.log").open("w"),
        )
        figures = totals(dumps)
        case = sum(figures[s] for s in ("submission", "accept", "review", "approve"))
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "requests_per_kind": REQUESTS,
            "million_instructions_per_request": {s: figures[s] for s in STEPS},
            "million_instructions_per_case": round(case, 3),
            "submission_to_bare": round(figures["submission"] / figures["bare_orm_ceiling"], 3),
            "keyed_submission_to_bare": round(
                figures["submission_keyed"] / figures["bare_orm_ceiling"], 3
            ),
            "keyed_submission_to_raw_asyncpg": round(
                figures["submission_keyed"] / figures["raw_asyncpg"], 3
            ),
        }
        print(json.dumps(result, indent=2))
        out = ROOT / "bench" / "results" / f"instructions-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"written to {out.relative_to(ROOT)}")
    finally:
        stop_stack(stack)
        asyncio.run(drop_postgres_database(bare_db))


if __name__ == "__main__":
    main()
