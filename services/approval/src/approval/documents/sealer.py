"""The sealer: signs, lays out and stores the documents that transitions registered.

A transition registers its notice or decision as a ``pending`` row in its own transaction (see
``DocumentIssuer``); the sealer, in approval's worker (or in the web process in the embedded
default), claims pending rows, signs their content with the seal, renders the PDF, stores it,
marks the row ``valid`` and emits ``cn.gov.approval.document.issued`` through the outbox, so that
notify delivers the file. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
workers seal side by side and none seals a document twice; SQLite has one writer at a time.

A failed attempt (seal service down, seal expired, storage failing) is recorded on the row and
retried with exponential backoff; ``documents_pending`` tells ops when documents wait. The loop
itself is ``govshared.seal.queue.PendingSealer``, shared with license's certificates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from approval.documents.models import SIGNED_KINDS, Document, DocumentStatus
from approval.documents.service import SealedFile, Sealing, seal_document
from approval.models import Application
from approval.transitions import SOURCE, event_party
from govshared.events import (
    ApplicationParty,
    DocumentEventData,
    EventType,
    SealedDocumentRef,
    make_event,
)
from govshared.outbox import OutboxWriter
from govshared.seal.queue import PendingSealer, SealerMetrics
from govshared.sql import dialect_name

METRICS = SealerMetrics(
    sealed=Counter("documents_sealed_total", "Documents signed, rendered and stored"),
    failures=Counter(
        "documents_seal_failures_total", "Failed attempts to seal a document", ["error"]
    ),
    pending=Gauge("documents_pending", "Documents registered but not yet sealed"),
    seconds=Histogram(
        "document_seal_seconds",
        "Time to sign, render and store one document",
        buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    ),
)
documents: Table = Document.__table__  # type: ignore[assignment]
applications: Table = Application.__table__  # type: ignore[assignment]
# A pending document and the columns of its application that its event names (event_party).
Pending = tuple[Document, Mapping[str, Any]]
_PARTY_COLUMNS = [
    applications.c["id" if name == "application_id" else name]
    for name in ApplicationParty.model_fields
]


def _sealed_values() -> dict[str, object]:
    c = documents.c
    return {
        name: bindparam(f"b_{name}", type_=c[name].type)
        for name in ("signature", "seal_id", "pdf_sha256", "pdf_size", "storage_key", "attempts")
    }


# A claimed batch's documents marked sealed: one statement, executed with a row per document.
_MARK_SEALED = (
    update(documents)
    .where(documents.c.id == bindparam("b_id", type_=documents.c.id.type))
    .values(
        status=DocumentStatus.VALID.value,
        next_attempt_at=None,
        last_error=None,
        **_sealed_values(),
    )
)


def download_path(document: Document) -> str:
    """Where the parties (and notify, with its service token) download the PDF."""
    return f"/api/v1/applications/{document.application_id}/documents/{document.id}/pdf"


class DocumentSealer(PendingSealer[Pending, SealedFile]):
    """Seals the notices and decisions that transitions registered."""

    what = "document"

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        sealing: Sealing,
        outbox: OutboxWriter,
        poll_interval: float = 0.5,
        batch_size: int = 20,
    ) -> None:
        super().__init__(
            sessionmaker=sessionmaker,
            metrics=METRICS,
            poll_seconds=poll_interval,
            batch_size=batch_size,
        )
        self._sealing = sealing
        self._outbox = outbox

    async def claim(self, session: AsyncSession, *, now: datetime, limit: int) -> Sequence[Pending]:
        """Pending documents due now with the columns of their applications that the events name
        (not the whole application: its form is a kilobyte of JSON to decode)."""
        d = documents.c
        query = (
            select(Document, *_PARTY_COLUMNS)
            .join(applications, applications.c.id == Document.application_id)
            .where(d.status == DocumentStatus.PENDING.value, d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
        )
        if dialect_name(session) == "postgresql":
            query = query.with_for_update(of=Document, skip_locked=True)
        return [
            (row[0], {c.key: value for c, value in zip(_PARTY_COLUMNS, row[1:], strict=True)})
            for row in (await session.execute(query)).all()
        ]

    async def produce(self, item: Pending) -> SealedFile:
        """Sign, render and store the document."""
        return await seal_document(self._sealing, item[0])

    def attempts_of(self, item: Pending) -> int:
        """Attempts already made."""
        return item[0].attempts

    def describe(self, item: Pending) -> dict[str, str]:
        """The document's number, for the logs."""
        return {"document": item[0].number}

    async def record(
        self, session: AsyncSession, item: Pending, result: SealedFile, *, now: datetime
    ) -> None:
        """Mark the document valid and emit ``document.issued`` (``record_many`` of one)."""
        await self.record_many(session, [(item, result)], now=now)

    async def record_many(
        self, session: AsyncSession, done: Sequence[tuple[Pending, SealedFile]], *, now: datetime
    ) -> None:
        """Mark the batch's documents valid (one UPDATE, executemany) and emit
        ``document.issued`` for notify (one outbox insert; not for a document the applicant
        signed: it is the applicant's own act, already in the case's trail)."""
        rows: list[dict[str, object]] = []
        events = []
        for (document, application), result in done:
            sha256 = hashlib.sha256(result.pdf).hexdigest()
            rows.append(
                {
                    "b_id": document.id,
                    "b_signature": result.signature,
                    "b_seal_id": result.seal_id,
                    "b_pdf_sha256": sha256,
                    "b_pdf_size": len(result.pdf),
                    "b_storage_key": result.storage_key,
                    "b_attempts": document.attempts + 1,
                }
            )
            if document.kind in SIGNED_KINDS:
                continue
            events.append(
                make_event(
                    type=EventType.DOCUMENT_ISSUED,
                    source=SOURCE,
                    subject=str(application["id"]),
                    data=DocumentEventData(
                        **event_party(application),
                        occurred_at=now,
                        document=SealedDocumentRef(
                            document_id=document.id,
                            kind=document.kind,
                            title=document.title,
                            number=document.number,
                            issued_on=document.issued_on,
                            pdf_sha256=sha256,
                            pdf_size=len(result.pdf),
                            download_path=download_path(document),
                            verify_url=self._sealing.verify_url(),
                        ),
                    ),
                )
            )
        await session.execute(_MARK_SEALED.values(sealed_at=now), rows)
        if events:
            await self._outbox.add_many(session, events)

    async def record_failure(
        self,
        session: AsyncSession,
        item: Pending,
        *,
        attempts: int,
        retry_at: datetime,
        error: str,
    ) -> None:
        """Write the failed attempt on the document's row."""
        await session.execute(
            update(documents)
            .where(documents.c.id == item[0].id)
            .values(attempts=attempts, next_attempt_at=retry_at, last_error=error)
        )

    async def count_pending(self, session: AsyncSession) -> int:
        """Documents registered but not yet sealed."""
        count = await session.scalar(
            select(func.count())
            .select_from(documents)
            .where(documents.c.status == DocumentStatus.PENDING.value)
        )
        return int(count or 0)
