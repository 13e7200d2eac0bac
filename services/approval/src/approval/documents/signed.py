"""Documents the applicant signed: the 告知承诺书 and the 送达回证, as PDFs carrying its signature.

What the applicant's phone signs is a signing session's canonical content (SM3 digest, SM2 over it,
GB/T 32918.2; ``approval.signing``). When the act that uses the session is done (the commitment
decision at intake, the receipt of a decision), the content and the signature are registered as a
document of the case, ``pending``, in the act's own transaction; the sealer lays out the PDF as it
does the authority's documents and embeds, PAdES-style, exactly what was signed: the content's bytes,
the SM2 signature, the signer's X.509 certificate and the revocation status found at signing
(``onestop-signature.json``). The authority does not seal these: the signature is the applicant's.

Anyone checks one on the public endpoints that check the authority's documents (``/verify``,
``/api/v1/documents/verify``): the content's SM3, the certificate's chain to a trusted CA and its
validity at signing time (not today: a signature made with a certificate valid then stays valid,
电子签名法 第十三条、第十四条), the SM2 signature under the certificate's key, the certificate's
subject against the applicant named in the content, the revocation status recorded at signing, and
the register (number, digest, signature and the file's SHA-256).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.documents.models import Document, DocumentKind, DocumentStatus
from approval.documents.repository import DocumentRepository
from approval.documents.schemas import Verification
from approval.signing.models import SigningSession
from govshared.chinatime import CHINA
from govshared.problems import DomainError
from govshared.seal import ALGORITHM, DEFAULT_SIGNER_ID, canonical_json, sm2_verify, sm3_hex
from govshared.signing import (
    CertificateExpired,
    CertInfo,
    SignatureVerifier,
    SubjectKind,
    parse_certificate,
)

FORMAT = "onestop-signature/1"
TITLES = {DocumentKind.COMMITMENT: "告知承诺书", DocumentKind.RECEIPT: "送达回证"}
NUMBER_WORDS = {DocumentKind.COMMITMENT: "承诺字", DocumentKind.RECEIPT: "回证字"}
VERDICTS = {
    "certificate_untrusted": "签名证书不是本系统信任的电子认证服务机构签发的，或证书已被改动",
    "certificate_expired": "签署时签名证书不在有效期内",
    "certificate_revoked": "签署时签名证书已被吊销，或签署时未能确认其状态",
    "certificate_subject_mismatch": "签名证书不属于文书所载的申请人",
    "bad_signature": "签名值无法用签名证书的公钥验证，文件可能被伪造",
    "digest_mismatch": "文件内容与签名时不一致，已被篡改",
}


def signature_record(signed: SigningSession) -> dict[str, Any]:
    """What a signed document carries of the signature: enough for anyone to check it again."""
    assert signed.certificate is not None and signed.signed_at is not None
    info = parse_certificate(signed.certificate)
    return {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "signer_id": DEFAULT_SIGNER_ID,
        "session_id": str(signed.id),
        "digest": signed.digest,
        "signature": signed.signature,
        "certificate": signed.certificate,
        "certificate_serial": f"{info.serial:x}",
        "signer": info.display_name,
        "seal_kind": info.seal_kind,
        "signed_at": signed.signed_at.astimezone(UTC).isoformat(),
        "revocation_at_signing": signed.revocation,
    }


async def register_signed(
    session: AsyncSession,
    *,
    kind: DocumentKind,
    party: Mapping[str, Any],
    signed: SigningSession,
    at: datetime,
) -> dict[str, Any]:
    """Register the signed content as a document of the case, for the sealer to render; its row."""
    content = json.loads(signed.content)
    # The register keeps the content as JSON; it must give back the very bytes that were signed.
    if canonical_json(content).decode() != signed.content:
        raise ValueError(f"signing session {signed.id}: content is not in canonical form")
    issued_on = at.astimezone(CHINA).date()
    number = (
        f"{party['jurisdiction']}〔{issued_on.year}〕{NUMBER_WORDS[kind]}"
        f"第{secrets.token_hex(4).upper()}号"
    )
    record = signature_record(signed)
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "application_id": party["id"],
        "kind": kind.value,
        "number": number,
        "title": TITLES[kind],
        "issued_on": issued_on,
        "issued_at": at,
        "content": content,
        "content_digest": signed.digest,
        "signature": record,
        "seal_id": record["certificate_serial"],
        "status": DocumentStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": at,
    }
    await DocumentRepository(session).insert(row)
    return row


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """What a signed PDF carries: its number, the signed bytes (as text) and the signature record."""

    number: str
    content: str
    record: dict[str, Any]


def payload_bytes(*, number: str, title: str, content: Mapping[str, Any], record: Any) -> bytes:
    """The embedded file of a signed PDF."""
    return canonical_json(
        {
            "format": FORMAT,
            "number": number,
            "title": title,
            "content": canonical_json(dict(content)).decode(),
            "signature": record,
        }
    )


# What a check reads of an embedded signature record and of the signed content, and so must find
# as text (or absent): anything else is not a file this system made.
RECORD_TEXT = (
    "digest",
    "signature",
    "certificate",
    "certificate_serial",
    "signer",
    "seal_kind",
    "signed_at",
)
CONTENT_TEXT = ("title", "application_no", "applicant_name", "applicant_uscc", "item_name")


def read_signed(pdf: bytes) -> SignedPayload | None:
    """The signed content and signature embedded in a PDF; None when there are none, or when
    what is there is not in the form this system writes (a crafted file: not ours, checked as a
    PDF with no signature)."""
    # The PDF stack (reportlab, pypdf) is imported by the first PDF read or made, not at start.
    from approval.documents.render import SIGNED_ATTACHMENT
    from govshared.seal.pdf import embedded

    data = embedded(pdf, SIGNED_ATTACHMENT)
    if data is None:
        return None
    try:
        payload = json.loads(data)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            return None
        number, content, record = payload["number"], payload["content"], payload["signature"]
        if not (
            isinstance(number, str)
            and isinstance(content, str)
            and isinstance(record, dict)
            and well_formed(record, json.loads(content))
        ):
            return None
        return SignedPayload(number=number, content=content, record=record)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def well_formed(record: Mapping[str, Any], content: Any) -> bool:
    """The record and content have the shapes ``signature_record`` and the signing session give
    them: text where text is read, a revocation record as an object."""
    return (
        isinstance(content, dict)
        and all(isinstance(record.get(name), str | None) for name in RECORD_TEXT)
        and isinstance(record.get("revocation_at_signing"), dict | None)
        and all(isinstance(content.get(name), str | None) for name in CONTENT_TEXT)
    )


def _when(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def revocation_text(record: Any) -> str:
    """The revocation status recorded at signing, for a person."""
    if not isinstance(record, Mapping) or record.get("status") != "good":
        return "签署时未记录证书吊销状态"
    published = _when(record.get("crl_this_update"))
    when = f"{published.astimezone(CHINA):%Y-%m-%d %H:%M}" if published else "—"
    return f"签署时未被吊销（依据 {record.get('crl_issuer', '')} {when} 发布的证书吊销列表）"


def _good_at_signing(revocation: Any) -> bool:
    """The CRL said the certificate was good when it signed (as recorded at signing)."""
    return isinstance(revocation, Mapping) and revocation.get("status") == "good"


def _signer_fits(info: CertInfo, content: Mapping[str, Any]) -> bool:
    """The certificate may sign this content: the applicant's own seal (its USCC), or for a
    送达回证 a natural person's key (the person who signed for the enterprise, as
    ``approval.signing`` lets them)."""
    if info.subject_kind is SubjectKind.PERSON:
        return content.get("purpose") == "receipt" and info.uscc is None
    return info.uscc is not None and info.uscc == content.get("applicant_uscc")


def check_signed(
    verifier: SignatureVerifier | None, *, number: str, content_text: str, record: Mapping[str, Any]
) -> Verification:
    """Check a signed document from what it carries (no register): content, certificate, signature."""
    try:
        content = json.loads(content_text)
        if not isinstance(content, dict):
            raise ValueError("content is not an object")
    except ValueError:
        content = {}
    signed_at = _when(record.get("signed_at"))
    described = Verification(
        genuine=False,
        verdict="",
        signature_type="applicant_signature",
        number=number,
        title=str(content.get("title") or "") or None,
        application_no=content.get("application_no"),
        applicant_name=content.get("applicant_name"),
        item_name=content.get("item_name"),
        issued_on=signed_at.astimezone(CHINA).date() if signed_at else None,
        signed_at=signed_at,
        certificate_serial=record.get("certificate_serial"),
        revocation_at_signing=revocation_text(record.get("revocation_at_signing")),
    )
    info: CertInfo | None = None
    failure: str | None = None
    digest = str(record.get("digest", ""))
    if sm3_hex(content_text.encode()) != digest:
        failure = "digest_mismatch"
    elif verifier is None or signed_at is None:
        failure = "certificate_untrusted"
    else:
        try:
            info = verifier.check_chain(str(record.get("certificate", "")), at=signed_at)
        except CertificateExpired:
            info, failure = verifier.read(str(record["certificate"])), "certificate_expired"
        except DomainError:
            failure = "certificate_untrusted"
    if info is not None:
        anchor = verifier.issuer_of(info) if verifier else None
        described = described.model_copy(
            update={
                "signer": info.display_name,
                "signer_kind": info.subject_kind.value,
                "signer_uscc": info.uscc,
                "seal_kind": info.seal_kind or None,
                "certificate_serial": f"{info.serial:x}",
                "certificate_issuer": anchor.name if anchor else None,
                "certificate_not_before": info.not_before,
                "certificate_not_after": info.not_after,
            }
        )
        if failure is None and not sm2_verify(
            info.public_key, bytes.fromhex(digest), str(record.get("signature", ""))
        ):
            failure = "bad_signature"
        elif failure is None and not _signer_fits(info, content):
            failure = "certificate_subject_mismatch"
        elif failure is None and not _good_at_signing(record.get("revocation_at_signing")):
            failure = "certificate_revoked"
    valid_at_signing = info is not None and failure not in (
        "certificate_untrusted",
        "certificate_expired",
        "certificate_revoked",
    )
    if failure is not None:
        reason = VERDICTS[failure]
        return described.model_copy(
            update={
                "verdict": reason,
                "failure": failure,
                "reason": reason,
                "certificate_valid_at_signing": valid_at_signing if info else None,
            }
        )
    return described.model_copy(
        update={"genuine": True, "verdict": "真实有效", "certificate_valid_at_signing": True}
    )


def signed_pdf(document: Document, *, verify_url: str, qr: str) -> bytes:
    """The PDF of a registered signed document (the sealer's work, as for sealed ones)."""
    from approval.documents.render import render_signed_pdf

    record = dict(document.signature or {})
    return render_signed_pdf(
        kind=document.kind,
        number=document.number,
        title=document.title,
        content=document.content,
        record=record,
        signed_on=document.issued_on.isoformat(),
        verify_url=verify_url,
        qr=qr,
        payload=payload_bytes(
            number=document.number, title=document.title, content=document.content, record=record
        ),
    )
