"""Sealing: CPU per sealed document in process, then N pending documents drained on PostgreSQL.

1. **CPU per document, in process** (no HTTP, no database): notices and decisions of five kinds
   (受理, 不予受理, 补正, 准予, 不予) signed with a development seal, laid out and stored in memory
   by ``seal_document``, as the sealer does; ``time.process_time`` per document. The code of this
   tree and of a baseline (``BENCH_BASELINE_REF``, default ``main``, unpacked with ``git archive``)
   run in alternating rounds, each in a fresh process, so that the machine's load falls on both.
2. **Drain**: ``BENCH_SEAL_DOCUMENTS`` (default 3000) pending documents registered in a fresh
   PostgreSQL database (applications and documents inserted directly), then ``BENCH_SEALERS``
   (default 2) processes, each a ``DocumentSealer`` as in approval's worker (claims with
   ``FOR UPDATE SKIP LOCKED``, batch of ``BENCH_SEAL_BATCH``, files on disk, outbox events), seal
   until none is pending. Prints documents per second and the sealers' CPU per document.

Prints its figures and writes ``bench/results/sealing-*.json``; asserts nothing. No ports are
opened. On a machine shared with other work the figures are indicative: say so with them.

    python3 -m uv run --locked python bench/sealing.py
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = int(os.environ.get("BENCH_SEAL_DOCUMENTS", "3000"))
SEALERS = int(os.environ.get("BENCH_SEALERS", "2"))
BATCH = int(os.environ.get("BENCH_SEAL_BATCH", "20"))
PER_KIND = int(os.environ.get("BENCH_SEAL_PER_KIND", "60"))
ROUNDS = int(os.environ.get("BENCH_SEAL_ROUNDS", "3"))
BASELINE = os.environ.get("BENCH_BASELINE_REF", "main")
POSTGRES = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
KINDS = ("acceptance", "rejection", "supplement", "approval", "denial")
AUTHORITY = "上海市市场监督管理局"
ITEM = {"code": "BENCH-SEAL-001", "name": "食品经营许可", "jurisdiction": "310000"}
GUIDE = {
    "legal_basis": [{"law": "《食品经营许可和备案管理办法》", "articles": "第十条"}],
    "result_type": "食品经营许可证",
    "deciding_authority": AUTHORITY,
}


def document_rows(count: int, *, at: datetime, offset: int = 0) -> list[dict[str, Any]]:
    """``count`` documents as ``DocumentIssuer`` registers them, kinds in turn, each with an
    application of its own (``application`` in each row: the party the document names)."""
    from approval.documents.models import DocumentKind
    from approval.documents.service import (
        FORMAT,
        NUMBER_WORDS,
        TITLES,
        legal_basis_text,
        paragraphs,
    )
    from govshared.seal import canonical_json, sm3_digest
    from govshared.testing import random_uscc

    rows = []
    for n in range(offset, offset + count):
        kind = DocumentKind(KINDS[n % len(KINDS)])
        party = {
            "id": uuid.uuid4(),
            "submitted_at": at - timedelta(days=3),
            "item_name": ITEM["name"],
            "item_code": ITEM["code"],
            "application_no": f"B{at:%Y%m%d}{n:09d}",
            "applicant_name": f"上海示范餐饮管理有限公司第{n}分公司",
            "applicant_uscc": random_uscc(),
            "jurisdiction": ITEM["jurisdiction"],
        }
        reason = (
            "申请材料不符合法定形式"
            if kind in (DocumentKind.REJECTION, DocumentKind.DENIAL)
            else None
        )
        details = (
            {"missing_items": ["营业执照", "食品安全管理制度"]}
            if kind is DocumentKind.SUPPLEMENT
            else {}
        )
        number = f"{ITEM['jurisdiction']}〔{at.year}〕{NUMBER_WORDS[kind]}第{n:08X}号"
        content = {
            "format": FORMAT,
            "kind": kind.value,
            "title": TITLES[kind],
            "number": number,
            "authority": AUTHORITY,
            "application_no": party["application_no"],
            "item_code": party["item_code"],
            "item_name": party["item_name"],
            "applicant_name": party["applicant_name"],
            "applicant_uscc": party["applicant_uscc"],
            "legal_basis": legal_basis_text(GUIDE),
            "reason": reason,
            "details": details,
            "paragraphs": paragraphs(
                kind, party=party, guide=GUIDE, reason=reason, details=details
            ),
            "issued_on": at.date().isoformat(),
        }
        rows.append(
            {
                "id": uuid.uuid4(),
                "application_id": party["id"],
                "kind": kind.value,
                "number": number,
                "title": TITLES[kind],
                "issued_on": at.date(),
                "issued_at": at,
                "content": content,
                "content_digest": sm3_digest(canonical_json(content)).hex(),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "application": party,
            }
        )
    return rows


# --- 1. CPU per document, in process ---------------------------------------------------------


def cpu_child(tree: str, per_kind: int) -> None:
    """In a fresh process: seal ``per_kind`` documents of each kind with the code of ``tree``."""
    sys.path[:0] = [f"{tree}/shared/src", f"{tree}/services/approval/src"]
    import approval.documents.service as service
    from govshared.seal import DevelopmentSeals, generate_sm2_key

    assert service.__file__.startswith(tree), service.__file__

    class Memory:
        async def put(self, key: str, data: bytes, *, content_type: str) -> None:
            self.last = data

    now = datetime.now(UTC)
    private, _ = generate_sm2_key()
    sealing = service.Sealing(
        seals=DevelopmentSeals(
            private, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=365)
        ),
        storage=Memory(),  # type: ignore[arg-type]
        public_base_url="https://zwfw.sh.gov.cn",
    )
    rows = document_rows(per_kind * len(KINDS) + len(KINDS), at=now)
    documents = [
        SimpleNamespace(**{k: v for k, v in row.items() if k != "application"}) for row in rows
    ]

    async def seal(batch: list[Any]) -> None:
        for document in batch:
            await service.seal_document(sealing, document)

    asyncio.run(seal(documents[: len(KINDS)]))  # fonts, seal drawing, QR tables: once a process
    measured = documents[len(KINDS) :]
    started = time.process_time()
    asyncio.run(seal(measured))
    spent = time.process_time() - started
    print(
        json.dumps(
            {
                "cpu_ms_per_document": round(spent / len(measured) * 1000, 3),
                "documents": len(measured),
            }
        )
    )


def unpack_baseline(directory: Path) -> tuple[str, str]:
    """The baseline's approval and shared sources, unpacked into ``directory``; (tree, commit)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", BASELINE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = directory / "baseline.tar"
    subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "archive",
            "-o",
            str(archive),
            BASELINE,
            "shared/src",
            "services/approval/src",
        ],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(directory / "tree", filter="data")
    return str(directory / "tree"), commit


def measure_cpu() -> dict[str, Any]:
    """Alternating rounds of this tree and the baseline; ms of CPU per document."""
    figures: dict[str, list[float]] = {"this": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        baseline, commit = unpack_baseline(Path(tmp))
        for _ in range(ROUNDS):
            for name, tree in (("baseline", baseline), ("this", str(ROOT))):
                out = subprocess.run(
                    [sys.executable, __file__, "--cpu-child", tree, str(PER_KIND)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                figures[name].append(json.loads(out.splitlines()[-1])["cpu_ms_per_document"])
                print(f"  {name:8} {figures[name][-1]:6.2f} ms CPU a document", flush=True)
    return {
        "baseline_ref": f"{BASELINE} ({commit})",
        "per_kind": PER_KIND,
        "rounds": ROUNDS,
        "cpu_ms_per_document_this": figures["this"],
        "cpu_ms_per_document_baseline": figures["baseline"],
        "median_this": statistics.median(figures["this"]),
        "median_baseline": statistics.median(figures["baseline"]),
    }


# --- 2. Drain on PostgreSQL ------------------------------------------------------------------


async def seed(url: str, count: int) -> None:
    """The item, ``count`` applications and their pending documents."""
    from sqlalchemy import insert
    from sqlalchemy.ext.asyncio import create_async_engine

    from approval.documents.models import Document
    from approval.models import Application, Item

    now = datetime.now(UTC)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Item.__table__),
            [
                {
                    **ITEM,
                    "item_type": "许可",
                    "authority": AUTHORITY,
                    "statutory_limit_days": 20,
                    "committed_limit_days": 10,
                    "version": 1,
                    "guide": GUIDE,
                    "updated_at": now,
                }
            ],
        )
        for start in range(0, count, 500):
            rows = document_rows(min(500, count - start), at=now, offset=start)
            await conn.execute(
                insert(Application.__table__),
                [
                    {
                        "id": row["application"]["id"],
                        "application_no": row["application"]["application_no"],
                        "item_code": ITEM["code"],
                        "item_version": 1,
                        "item_name": ITEM["name"],
                        "applicant_uscc": row["application"]["applicant_uscc"],
                        "applicant_name": row["application"]["applicant_name"],
                        "jurisdiction": ITEM["jurisdiction"],
                        "business_type": "new",
                        "state": "accepted",
                        "form": {},
                        "submitted_at": row["application"]["submitted_at"],
                        "updated_at": now,
                        "row_version": 1,
                    }
                    for row in rows
                ],
            )
            await conn.execute(
                insert(Document.__table__),
                [{k: v for k, v in row.items() if k != "application"} for row in rows],
            )
    await engine.dispose()


def sealer_child(url: str, data_dir: str) -> None:
    """A sealer process: wait for a line on stdin, then seal until nothing is pending."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from approval.db import outbox_events
    from approval.documents.sealer import DocumentSealer
    from approval.documents.service import Sealing
    from approval.worker import SUBSCRIPTIONS
    from govshared.outbox import OutboxWriter
    from govshared.seal import DevelopmentSeals, load_sm2_private_key
    from govshared.storage import FileSystemStorage

    async def run() -> dict[str, Any]:
        engine = create_async_engine(url, pool_size=2)
        private, _ = load_sm2_private_key(Path(data_dir) / "seal.key")
        now = datetime.now(UTC)
        sealer = DocumentSealer(
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            sealing=Sealing(
                seals=DevelopmentSeals(
                    private, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=9)
                ),
                storage=FileSystemStorage(Path(data_dir) / "files"),
                public_base_url="https://zwfw.sh.gov.cn",
            ),
            outbox=OutboxWriter(outbox_events, SUBSCRIPTIONS),
            batch_size=BATCH,
        )
        await sealer.pending()  # connect before the start
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        cpu, wall = time.process_time(), time.monotonic()
        if os.environ.get("BENCH_SEAL_PROFILE"):
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            run = await sealer.run_once()
            profile.disable()
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        else:
            run = await sealer.run_once()
        result = {
            "sealed": run.sealed,
            "failed": run.failed,
            "cpu_seconds": time.process_time() - cpu,
            "seconds": time.monotonic() - wall,
        }
        await engine.dispose()
        return result

    print(json.dumps(asyncio.run(run())))


async def measure_drain() -> dict[str, Any]:
    """Seed, start the sealers together, wait for them; documents per second."""
    from govshared.migrate import upgrade
    from govshared.seal import generate_sm2_key
    from govshared.testing import create_postgres_database, drop_postgres_database

    os.environ.setdefault("TEST_DATABASE_URL", POSTGRES)
    url = await create_postgres_database("bench_sealing")
    try:
        await asyncio.to_thread(upgrade, ROOT / "services/approval/alembic.ini", url)
        print(f"seeding {DOCUMENTS} pending documents ...", flush=True)
        await seed(url, DOCUMENTS)
        with tempfile.TemporaryDirectory() as data:
            private, _ = generate_sm2_key()
            (Path(data) / "seal.key").write_text(private + "\n")
            children = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--sealer-child",
                    url,
                    data,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                for _ in range(SEALERS)
            ]
            for child in children:  # imported and connected
                assert child.stdout is not None
                assert (await child.stdout.readline()).strip() == b"ready"
            load = os.getloadavg()[0]
            started = time.monotonic()
            for child in children:
                assert child.stdin is not None
                child.stdin.write(b"go\n")
            lines = await asyncio.gather(
                *(child.stdout.readline() for child in children if child.stdout)
            )
            wall = time.monotonic() - started
            await asyncio.gather(*(child.wait() for child in children))
        results = [json.loads(line) for line in lines]
    finally:
        await drop_postgres_database(url)
    sealed = sum(r["sealed"] for r in results)
    cpu = sum(r["cpu_seconds"] for r in results)
    return {
        "documents": DOCUMENTS,
        "sealers": SEALERS,
        "batch_size": BATCH,
        "sealed": sealed,
        "failed": sum(r["failed"] for r in results),
        "drain_seconds": round(wall, 2),
        "drain_documents_per_second": round(sealed / wall, 1),
        "sealer_cpu_ms_per_document": round(cpu / max(sealed, 1) * 1000, 3),
        "per_sealer": results,
        "load_average_at_start": load,
    }


def main() -> None:
    started = datetime.now(UTC)
    print(
        f"CPU per sealed document, in process, {ROUNDS} alternating rounds ({BASELINE} vs this tree):"
    )
    cpu = measure_cpu()
    print(
        f"median: this tree {cpu['median_this']:.2f} ms, baseline {cpu['median_baseline']:.2f} ms "
        f"({cpu['median_baseline'] / cpu['median_this']:.1f}× less CPU)",
        flush=True,
    )
    drain = asyncio.run(measure_drain())
    print(
        f"drain: {drain['sealed']} documents by {SEALERS} sealer processes on PostgreSQL in "
        f"{drain['drain_seconds']} s: {drain['drain_documents_per_second']} documents/s "
        f"({drain['sealer_cpu_ms_per_document']} ms of sealer CPU a document, failed {drain['failed']}; "
        f"load average {drain['load_average_at_start']:.1f} at the start)"
    )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"sealing-{started:%Y%m%dT%H%M%S}.json"
    path.write_text(
        json.dumps(
            {"started": started.isoformat(), "cpu": cpu, "drain": drain},
            ensure_ascii=False,
            indent=2,
        )
        + "\n"
    )
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--cpu-child":
        cpu_child(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--sealer-child":
        sealer_child(sys.argv[2], sys.argv[3])
    else:
        main()
