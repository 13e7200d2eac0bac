"""The sealer: signs, lays out and stores the certificates that licence changes registered.

Runs in license's worker (``python -m licensing.worker``) or, in the embedded default, inside the
web process, woken after each commit that registered a certificate. One transaction per batch:
claim pending certificates (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that worker replicas share
the queue), seal each, mark it ``sealed`` and emit the licence event that waited for it, now
carrying the certificate's ``SealedDocumentRef``. A failed attempt is recorded on the row and
retried with exponential backoff; ``licence_certificates_pending`` tells ops when certificates wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.events import EventType, LicenceEventData, make_event
from govshared.outbox import OutboxWriter
from licensing.certificates.repository import CertificateRepository
from licensing.certificates.service import SealedFile, Sealing, document_ref, seal_certificate
from licensing.licences.repository import loaded
from licensing.models import CertificateStatus, Licence, LicenceCertificate

logger = logging.getLogger("licensing.certificates.sealer")

SOURCE = "/services/license"
MAX_BACKOFF = timedelta(minutes=10)
PENDING_GAUGE_SECONDS = 10.0
CERTIFICATES_SEALED = Counter(
    "licence_certificates_sealed_total", "Licence certificates signed, laid out and stored"
)
CERTIFICATE_SEAL_FAILURES = Counter(
    "licence_certificate_seal_failures_total",
    "Failed attempts to seal a licence certificate",
    ["error"],
)
CERTIFICATES_PENDING = Gauge(
    "licence_certificates_pending", "Licence certificates registered but not yet sealed"
)


def backoff(attempts: int) -> timedelta:
    """How long a certificate waits after its ``attempts``-th failed attempt."""
    return min(timedelta(seconds=2 ** min(attempts, 12)), MAX_BACKOFF)


@dataclass(slots=True)
class SealRun:
    """What one run of the sealer did."""

    sealed: int = 0
    failed: int = 0


class CertificateSealer:
    """Seals pending certificates batch after batch until none is due; then waits."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        sealing: Sealing,
        outbox: OutboxWriter,
        poll_seconds: float,
        batch_size: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._sealing = sealing
        self._outbox = outbox
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()

    def wake(self, _session: AsyncSession | None = None) -> None:
        """Seal now instead of at the next poll (a licence change registered a certificate)."""
        self._wakeup.set()

    async def run_once(self) -> SealRun:
        """Seal every certificate due now."""
        total = SealRun()
        while True:
            run = await self._batch()
            total.sealed += run.sealed
            total.failed += run.failed
            if run.sealed + run.failed < self._batch_size:
                return total

    async def _batch(self) -> SealRun:
        run = SealRun()
        now = datetime.now(UTC)
        async with self._sessionmaker() as session:
            async with session.begin():
                certificates = CertificateRepository(session)
                for certificate, licence in await certificates.claim_pending(
                    now=now, limit=self._batch_size
                ):
                    try:
                        sealed = await seal_certificate(self._sealing, certificate, licence)
                    except Exception as exc:  # recorded on the row and retried: never lost
                        run.failed += 1
                        await self._failed(certificates, certificate, exc, now)
                        continue
                    run.sealed += 1
                    await self._sealed(session, certificates, certificate, licence, sealed, now)
            # The waiting events are in the outbox now: wake the in-process relay.
            for hook in session.info.pop("after_commit", []):
                hook(session)
        CERTIFICATES_SEALED.inc(run.sealed)
        return run

    async def _sealed(
        self,
        session: AsyncSession,
        certificates: CertificateRepository,
        certificate: LicenceCertificate,
        licence: Licence,
        sealed: SealedFile,
        now: datetime,
    ) -> None:
        values = {
            "status": CertificateStatus.SEALED.value,
            "content": sealed.content,
            "content_digest": sealed.signature.digest,
            "signature": sealed.signature.model_dump(mode="json"),
            "seal_id": sealed.signature.seal.seal_id,
            "pdf_sha256": hashlib.sha256(sealed.pdf).hexdigest(),
            "pdf_size": len(sealed.pdf),
            "storage_key": sealed.storage_key,
            "sealed_at": now,
            "attempts": certificate.attempts + 1,
            "next_attempt_at": None,
            "last_error": None,
        }
        await certificates.update(certificate.id, values)
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

    async def _failed(
        self,
        certificates: CertificateRepository,
        certificate: LicenceCertificate,
        exc: Exception,
        now: datetime,
    ) -> None:
        attempts = certificate.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:500]
        CERTIFICATE_SEAL_FAILURES.labels(error=type(exc).__name__).inc()
        logger.warning(
            "sealing a licence certificate failed; it will be retried",
            extra={
                "licence_no": certificate.licence_no,
                "version": certificate.version,
                "attempts": attempts,
                "error": error,
            },
        )
        await certificates.update(
            certificate.id,
            {"attempts": attempts, "next_attempt_at": now + backoff(attempts), "last_error": error},
        )

    async def pending(self) -> int:
        """How many certificates wait to be sealed."""
        async with self._sessionmaker() as session:
            return await CertificateRepository(session).pending_count()

    async def run(self) -> None:
        """Seal until stopped; errors are logged and retried at the next poll, never fatal."""
        measured = 0.0
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                run = await self.run_once()
                if run.sealed or run.failed:
                    logger.info(
                        "licence certificates sealed",
                        extra={"sealed": run.sealed, "failed": run.failed},
                    )
                if time.monotonic() - measured > PENDING_GAUGE_SECONDS:
                    CERTIFICATES_PENDING.set(await self.pending())
                    measured = time.monotonic()
            except Exception:
                logger.exception("licence certificate sealer pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_seconds)

    def stop(self) -> None:
        """Stop after the current batch."""
        self._stopping.set()
        self._wakeup.set()
