"""The sealer: signs, lays out and stores the certificates that licence changes registered.

Runs in license's worker (``python -m licensing.worker``) or, in the embedded default, inside the
web process, woken after each commit that registered a certificate. One transaction per batch:
claim pending certificates (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that worker replicas share
the queue), seal each, mark it ``sealed`` and emit the licence event that waited for it, now
carrying the certificate's ``SealedDocumentRef``. A failed attempt is recorded on the row and
retried with exponential backoff; ``licence_certificates_pending`` tells ops when certificates wait.
The loop itself is ``govshared.seal.queue.PendingSealer``, shared with approval's documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.events import EventType, LicenceEventData, make_event
from govshared.outbox import OutboxWriter
from govshared.seal.queue import PendingSealer, SealerMetrics
from licensing.certificates.repository import CertificateRepository
from licensing.certificates.service import SealedFile, Sealing, document_ref, seal_certificate
from licensing.licences.repository import loaded
from licensing.models import CertificateStatus, Licence, LicenceCertificate

SOURCE = "/services/license"
METRICS = SealerMetrics(
    sealed=Counter(
        "licence_certificates_sealed_total", "Licence certificates signed, laid out and stored"
    ),
    failures=Counter(
        "licence_certificate_seal_failures_total",
        "Failed attempts to seal a licence certificate",
        ["error"],
    ),
    pending=Gauge(
        "licence_certificates_pending", "Licence certificates registered but not yet sealed"
    ),
)
Pending = tuple[LicenceCertificate, Licence]


class CertificateSealer(PendingSealer[Pending, SealedFile]):
    """Seals the certificates that licence changes registered."""

    what = "licence certificate"

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        sealing: Sealing,
        outbox: OutboxWriter,
        poll_seconds: float,
        batch_size: int,
    ) -> None:
        super().__init__(
            sessionmaker=sessionmaker,
            metrics=METRICS,
            poll_seconds=poll_seconds,
            batch_size=batch_size,
        )
        self._sealing = sealing
        self._outbox = outbox

    async def claim(self, session: AsyncSession, *, now: datetime, limit: int) -> Sequence[Pending]:
        """Pending certificates due now with their licence versions."""
        return await CertificateRepository(session).claim_pending(now=now, limit=limit)

    async def produce(self, item: Pending) -> SealedFile:
        """Sign, lay out and store the certificate."""
        return await seal_certificate(self._sealing, *item)

    def attempts_of(self, item: Pending) -> int:
        """Attempts already made."""
        return item[0].attempts

    def describe(self, item: Pending) -> dict[str, object]:
        """The licence number and version, for the logs."""
        return {"licence_no": item[0].licence_no, "version": item[0].version}

    async def record(
        self, session: AsyncSession, item: Pending, result: SealedFile, *, now: datetime
    ) -> None:
        """Mark the certificate sealed and emit the licence event that waited for it."""
        certificate, licence = item
        values = {
            "status": CertificateStatus.SEALED.value,
            "content": result.content,
            "content_digest": result.signature.digest,
            "signature": result.signature.model_dump(mode="json"),
            "seal_id": result.signature.seal.seal_id,
            "pdf_sha256": hashlib.sha256(result.pdf).hexdigest(),
            "pdf_size": len(result.pdf),
            "storage_key": result.storage_key,
            "sealed_at": now,
            "attempts": certificate.attempts + 1,
            "next_attempt_at": None,
            "last_error": None,
        }
        await CertificateRepository(session).update(certificate.id, values)
        loaded(certificate, values)
        if certificate.event_type is None or certificate.event_data is None:
            return  # a certificate backfilled for an older licence: its holder was told then
        data = LicenceEventData.model_validate(
            {
                **certificate.event_data,
                "document": document_ref(certificate, verify_url=self._sealing.verify_url),
            }
        )
        event = make_event(
            type=EventType(certificate.event_type),
            source=SOURCE,
            subject=licence.licence_no,
            data=data,
        )
        await self._outbox.add(session, event)

    async def record_failure(
        self,
        session: AsyncSession,
        item: Pending,
        *,
        attempts: int,
        retry_at: datetime,
        error: str,
    ) -> None:
        """Write the failed attempt on the certificate's row."""
        await CertificateRepository(session).update(
            item[0].id, {"attempts": attempts, "next_attempt_at": retry_at, "last_error": error}
        )

    async def count_pending(self, session: AsyncSession) -> int:
        """Certificates registered but not yet sealed."""
        return await CertificateRepository(session).pending_count()
