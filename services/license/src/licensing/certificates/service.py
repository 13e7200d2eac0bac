"""Sealed licence certificates: what is signed, sealing one, serving it, and its event reference.

Every licence version a holder receives (issue, change, renewal, deemed renewal) gets a certificate
signed with the issuing authority's seal (``govshared.seal.SealBook``: SM2 over the SM3 digest of the
certificate's canonical content) and stored (``govshared.storage``).

How it is never lost: the transaction that creates the licence version registers its certificate as
a ``pending`` row, together with the licence event that will announce it (``register``). License's
sealer (``licensing.certificates.sealer``, in the worker or the embedded web process) claims pending
rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, signs, lays out and stores the PDF, marks the row
``sealed`` and emits the waiting event with the certificate's ``SealedDocumentRef``, all in one
transaction. The row commits with the licence or not at all, and a failed attempt (seal service
down, seal expired, storage failing) stays queued and is retried with backoff. The seal, possibly an
external service, and the object store are never called inside a request's transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.db import after_commit, end_read
from govshared.events import EventType, LicenceEventData, SealedDocumentRef
from govshared.problems import DependencyUnavailable
from govshared.seal import SealBook, SealSignature, canonical_json, sm3_digest
from govshared.storage import Storage
from licensing.certificates.repository import CertificateRepository
from licensing.certificates.schemas import CertificateOut
from licensing.errors import CertificateNotFound, CertificateNotSealed
from licensing.models import CertificateStatus, Licence, LicenceCertificate

logger = logging.getLogger("licensing.certificates")

FORMAT = "onestop-licence/1"
KIND = "licence"
WakeHook = Callable[[AsyncSession], None]


@dataclass(slots=True)
class Sealing:
    """What sealing, serving and verifying certificates need, made once at start-up."""

    seals: SealBook
    storage: Storage
    verify_url: str
    _wake: list[WakeHook] = field(default_factory=list)

    def on_registered(self, wake: WakeHook) -> None:
        """Call ``wake`` after a transaction that registered a certificate commits."""
        self._wake.append(wake)

    def registered(self, session: AsyncSession) -> None:
        """A certificate was registered in ``session``: wake the in-process sealer after commit."""
        for wake in self._wake:
            after_commit(session, wake)

    def qr_url(self, *, licence_no: str, version: int, digest: str | None) -> str:
        """What the certificate's QR code opens: the public verification of this version."""
        query: dict[str, str | int] = {"licence_no": licence_no, "version": version}
        if digest is not None:
            query["digest"] = digest
        return f"{self.verify_url}?{urlencode(query)}"


def certificate_content(licence: Licence, *, title: str) -> dict[str, Any]:
    """What a licence version's certificate says, as signed (its canonical JSON is the input)."""
    return {
        "format": FORMAT,
        "kind": KIND,
        "title": title,
        "licence_no": licence.licence_no,
        "version": licence.version,
        "licence_type": licence.licence_type,
        "holder_name": licence.holder_name,
        "holder_uscc": licence.holder_uscc,
        "issuing_authority": licence.issuing_authority,
        "issued_on": licence.issued_on.isoformat(),
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "particulars": dict(licence.particulars),
    }


def content_sm3(content: dict[str, Any]) -> bytes:
    """The SM3 digest of the content's canonical form: what the seal signs."""
    return sm3_digest(canonical_json(content))


def storage_key(certificate: LicenceCertificate) -> str:
    """Where a certificate's PDF is kept."""
    return f"{certificate.licence_no}/v{certificate.version}-{certificate.id}.pdf"


def download_path(certificate: LicenceCertificate) -> str:
    """Where the holder, staff and services (notify) download this very certificate."""
    return f"/api/v1/licences/{quote(certificate.licence_no)}/certificates/{certificate.id}/pdf"


@dataclass(frozen=True, slots=True)
class SealedFile:
    """What sealing one certificate produced."""

    content: dict[str, Any]
    signature: SealSignature
    pdf: bytes
    storage_key: str


async def seal_certificate(
    sealing: Sealing, certificate: LicenceCertificate, licence: Licence
) -> SealedFile:
    """Sign a licence version's content, lay out its PDF and store it."""
    # reportlab and pypdf are imported by the first certificate sealed, not at the web's start.
    from licensing.certificates.render import render_certificate

    content = certificate_content(licence, title=certificate.title)
    digest = content_sm3(content)
    signer = sealing.seals.signer_for(str(content["issuing_authority"]))
    signature = await signer.sign(digest)
    qr = sealing.qr_url(licence_no=licence.licence_no, version=licence.version, digest=digest.hex())
    # Layout is CPU work of some tens of milliseconds: off the event loop that serves requests.
    pdf = await asyncio.to_thread(
        render_certificate,
        content=content,
        signature=signature,
        verify_url=sealing.verify_url,
        qr=qr,
    )
    key = storage_key(certificate)
    await sealing.storage.put(key, pdf, content_type="application/pdf")
    return SealedFile(content=content, signature=signature, pdf=pdf, storage_key=key)


def document_ref(certificate: LicenceCertificate, *, verify_url: str) -> SealedDocumentRef:
    """The reference a licence event carries to a sealed certificate."""
    assert certificate.pdf_sha256 is not None and certificate.pdf_size is not None
    return SealedDocumentRef(
        document_id=certificate.id,
        kind=KIND,
        title=certificate.title,
        number=certificate.licence_no,
        issued_on=certificate.issued_on,
        pdf_sha256=certificate.pdf_sha256,
        pdf_size=certificate.pdf_size,
        download_path=download_path(certificate),
        verify_url=verify_url,
    )


def certificate_out(certificate: LicenceCertificate, *, sealing: Sealing) -> CertificateOut:
    """The REST view of a certificate."""
    return CertificateOut(
        id=certificate.id,
        licence_no=certificate.licence_no,
        version=certificate.version,
        title=certificate.title,
        status=CertificateStatus(certificate.status),
        issued_on=certificate.issued_on,
        content_digest=certificate.content_digest,
        seal_id=certificate.seal_id,
        pdf_sha256=certificate.pdf_sha256,
        pdf_size=certificate.pdf_size,
        sealed_at=certificate.sealed_at,
        download_path=download_path(certificate),
        qr_url=sealing.qr_url(
            licence_no=certificate.licence_no,
            version=certificate.version,
            digest=certificate.content_digest,
        ),
    )


class CertificateService:
    """Registering, reading and serving certificates; it never commits."""

    def __init__(self, session: AsyncSession, *, sealing: Sealing) -> None:
        self.session = session
        self.sealing = sealing
        self.repository = CertificateRepository(session)

    async def register(
        self,
        licence: dict[str, Any],
        *,
        title: str,
        event_type: EventType | None,
        event_data: LicenceEventData | None,
        at: datetime,
    ) -> uuid.UUID:
        """Queue a new licence version's certificate, and the event that waits for it."""
        certificate_id = uuid.uuid4()
        await self.repository.insert(
            {
                "id": certificate_id,
                "licence_id": licence["id"],
                "licence_no": licence["licence_no"],
                "version": licence["version"],
                "title": title,
                "issued_on": licence["issued_on"],
                "status": CertificateStatus.PENDING.value,
                "registered_at": at,
                "event_type": event_type.value if event_type else None,
                "event_data": (
                    event_data.model_dump(mode="json", exclude={"document"}) if event_data else None
                ),
                "attempts": 0,
                "next_attempt_at": at,
            }
        )
        self.sealing.registered(self.session)
        return certificate_id

    async def of_licence(self, licence: Licence) -> LicenceCertificate | None:
        """The certificate of a licence version."""
        return await self.repository.of_licence(licence.id)

    async def of_licences(self, licences: Sequence[Licence]) -> dict[uuid.UUID, LicenceCertificate]:
        """The certificates of several licence versions, by licence version id."""
        return await self.repository.of_licences([licence.id for licence in licences])

    async def sealed_ref(self, licence: Licence) -> SealedDocumentRef | None:
        """The reference to a licence version's certificate, once sealed."""
        certificate = await self.repository.of_licence(licence.id)
        if certificate is None or certificate.status != CertificateStatus.SEALED:
            return None
        return document_ref(certificate, verify_url=self.sealing.verify_url)

    async def current_of(self, licence: Licence) -> LicenceCertificate:
        """The certificate of the licence version in hand (404 when it has none)."""
        certificate = await self.repository.of_licence(licence.id)
        if certificate is None:
            raise CertificateNotFound(
                f"证照 {licence.licence_no} 第{licence.version}版没有电子证照文件"
            )
        return certificate

    async def of_number(self, licence_no: str, certificate_id: uuid.UUID) -> LicenceCertificate:
        """A certificate of the licence number (any version); 404 for another licence's."""
        certificate = await self.repository.get(certificate_id)
        if certificate is None or certificate.licence_no != licence_no:
            raise CertificateNotFound(
                f"证照 {licence_no} 没有编号为 {certificate_id} 的电子证照文件"
            )
        return certificate

    async def pdf(self, certificate: LicenceCertificate) -> bytes:
        """The stored sealed PDF, as issued; 409 while it is still being sealed.

        Fetched once the request's read has ended (object storage is a network call): the row
        is detached first and keeps its values; a sealed certificate's key and hash never change.
        """
        if certificate.status != CertificateStatus.SEALED or certificate.storage_key is None:
            raise CertificateNotSealed(
                f"证照 {certificate.licence_no} 第{certificate.version}版正在加盖电子印章，请稍后下载",
                retry_after_seconds=2,
            )
        self.session.expunge(certificate)
        await end_read(self.session)
        data = await self.sealing.storage.get(certificate.storage_key)
        if hashlib.sha256(data).hexdigest() != certificate.pdf_sha256:
            # The store handed back something else than what was sealed: never serve it as ours.
            logger.error(
                "stored certificate does not match its register row",
                extra={"certificate": str(certificate.id), "key": certificate.storage_key},
            )
            raise DependencyUnavailable(
                "存档的电子证照文件校验失败，请稍后再试", dependency="storage"
            )
        return data
