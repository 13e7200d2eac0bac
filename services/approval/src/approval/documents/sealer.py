"""The sealer: signs, lays out and stores the documents that transitions registered.

A transition registers its notice or decision as a ``pending`` row in its own transaction (see
``DocumentIssuer``); the sealer, in approval's worker (or in the web process in the embedded
default), claims pending rows, signs their content with the seal, renders the PDF, stores it,
marks the row ``valid`` and emits ``cn.gov.approval.document.issued`` through the outbox, so that
notify delivers the file. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
workers seal side by side and none seals a document twice; SQLite has one writer at a time.

A failed attempt (seal service down, seal expired, storage failing) is recorded on the row and
retried with exponential backoff; ``documents_pending`` tells ops when documents wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from approval.documents.models import Document, DocumentStatus
from approval.documents.service import SealedFile, Sealing, seal_document
from approval.models import Application
from govshared.events import DocumentEventData, EventType, SealedDocumentRef, make_event
from govshared.outbox import OutboxWriter
from govshared.sql import dialect_name

logger = logging.getLogger(__name__)

SOURCE = "/services/approval"
MAX_BACKOFF = timedelta(minutes=10)
DOCUMENTS_SEALED = Counter("documents_sealed_total", "Documents signed, rendered and stored")
DOCUMENT_SEAL_FAILURES = Counter(
    "documents_seal_failures_total", "Failed attempts to seal a document", ["error"]
)
DOCUMENTS_PENDING = Gauge("documents_pending", "Documents registered but not yet sealed")
SEAL_SECONDS = Histogram(
    "document_seal_seconds",
    "Time to sign, render and store one document",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
documents: Table = Document.__table__  # type: ignore[assignment]


def download_path(document: Document) -> str:
    """Where the parties (and notify, with its service token) download the PDF."""
    return f"/api/v1/applications/{document.application_id}/documents/{document.id}/pdf"


@dataclass(slots=True)
class SealRun:
    """What one run did."""

    sealed: int = 0
    failed: int = 0


class DocumentSealer:
    """Seals pending documents, batch after batch, until there are none due; then waits."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        sealing: Sealing,
        outbox: OutboxWriter,
        poll_interval: float = 0.5,
        batch_size: int = 20,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._sealing = sealing
        self._outbox = outbox
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()

    def wake(self, _session: AsyncSession | None = None) -> None:
        """Seal now rather than at the next poll (after a transition committed)."""
        self._wakeup.set()

    async def run_once(self, *, now: datetime | None = None) -> SealRun:
        """Seal everything due at ``now`` (default: the current time); what was done."""
        total = SealRun()
        while True:
            run = await self._batch(now or datetime.now(UTC))
            total.sealed += run.sealed
            total.failed += run.failed
            if run.sealed + run.failed < self._batch_size:
                return total

    async def _batch(self, now: datetime) -> SealRun:
        run = SealRun()
        async with self._sessionmaker() as session, session.begin():
            for document, application in await self._claim(session, now):
                started = time.perf_counter()
                try:
                    sealed = await seal_document(self._sealing, document)
                except Exception as exc:  # recorded on the row and retried; never lost
                    run.failed += 1
                    await self._failed(session, document, exc, now)
                    continue
                SEAL_SECONDS.observe(time.perf_counter() - started)
                run.sealed += 1
                await self._sealed(session, document, application, sealed, now)
        DOCUMENTS_SEALED.inc(run.sealed)
        return run

    async def _claim(
        self, session: AsyncSession, now: datetime
    ) -> Sequence[tuple[Document, Application]]:
        d = documents.c
        query = (
            select(Document, Application)
            .join(Application, Application.id == Document.application_id)
            .where(d.status == DocumentStatus.PENDING.value, d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, d.id)
            .limit(self._batch_size)
        )
        if dialect_name(session) == "postgresql":
            query = query.with_for_update(of=Document, skip_locked=True)
        return [(row[0], row[1]) for row in (await session.execute(query)).all()]

    async def _sealed(
        self,
        session: AsyncSession,
        document: Document,
        application: Application,
        sealed: SealedFile,
        now: datetime,
    ) -> None:
        sha256 = hashlib.sha256(sealed.pdf).hexdigest()
        await session.execute(
            update(documents)
            .where(documents.c.id == document.id)
            .values(
                status=DocumentStatus.VALID.value,
                signature=sealed.signature.model_dump(mode="json"),
                seal_id=sealed.signature.seal.seal_id,
                pdf_sha256=sha256,
                pdf_size=len(sealed.pdf),
                storage_key=sealed.storage_key,
                sealed_at=now,
                attempts=document.attempts + 1,
                next_attempt_at=None,
                last_error=None,
            )
        )
        await self._outbox.add(
            session,
            make_event(
                type=EventType.DOCUMENT_ISSUED,
                source=SOURCE,
                subject=str(application.id),
                data=DocumentEventData(
                    application_id=application.id,
                    application_no=application.application_no,
                    item_code=application.item_code,
                    item_name=application.item_name,
                    applicant_uscc=application.applicant_uscc,
                    applicant_name=application.applicant_name,
                    jurisdiction=application.jurisdiction,
                    occurred_at=now,
                    document=SealedDocumentRef(
                        document_id=document.id,
                        kind=document.kind,
                        title=document.title,
                        number=document.number,
                        issued_on=document.issued_on,
                        pdf_sha256=sha256,
                        pdf_size=len(sealed.pdf),
                        download_path=download_path(document),
                        verify_url=self._sealing.verify_url(),
                    ),
                ),
            ),
        )

    async def _failed(
        self, session: AsyncSession, document: Document, exc: Exception, now: datetime
    ) -> None:
        attempts = document.attempts + 1
        delay = min(timedelta(seconds=2 ** min(attempts, 12)), MAX_BACKOFF)
        error = f"{type(exc).__name__}: {exc}"[:500]
        DOCUMENT_SEAL_FAILURES.labels(error=type(exc).__name__).inc()
        logger.warning(
            "sealing document failed; retrying",
            extra={"document": document.number, "attempts": attempts, "error": error},
        )
        await session.execute(
            update(documents)
            .where(documents.c.id == document.id)
            .values(attempts=attempts, next_attempt_at=now + delay, last_error=error)
        )

    async def pending(self) -> int:
        """How many documents wait to be sealed."""
        async with self._sessionmaker() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(documents)
                .where(documents.c.status == DocumentStatus.PENDING.value)
            )
        return int(count or 0)

    async def run(self) -> None:
        """Loop until ``stop``: seal, then wait for a wake-up or the poll interval."""
        measured = 0.0
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                await self.run_once()
                if time.monotonic() - measured > 10:
                    DOCUMENTS_PENDING.set(await self.pending())
                    measured = time.monotonic()
            except Exception:
                logger.exception("document sealer run failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(), timeout=self._poll_interval)

    async def _wait(self) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        wake = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def stop(self) -> None:
        """Ask the loop to finish after the current batch."""
        self._stopping.set()
