"""Documents' REST schemas."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DocumentOut(BaseModel):
    """An issued document as its parties see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    application_id: uuid.UUID
    kind: str = Field(
        description="acceptance | rejection | supplement | approval | denial | pause (sealed by "
        "the authority) · commitment 告知承诺书 | receipt 送达回证 (signed by the applicant)"
    )
    number: str = Field(description="文书编号")
    title: str
    issued_on: date
    issued_at: datetime
    content_digest: str = Field(description="SM3 digest of the signed canonical content")
    status: str = Field(
        description="pending (decided, being sealed: the PDF follows within seconds) | valid | "
        "revoked"
    )
    sealed_at: datetime | None = Field(default=None, description="When the seal signed it")
    seal_id: str | None = None
    pdf_sha256: str | None = Field(default=None, description="SHA-256 of the sealed PDF")
    pdf_size: int | None = None
    content: dict[str, Any] = Field(description="The signed content (canonical JSON form)")


class DocumentList(BaseModel):
    """An application's documents, oldest first."""

    items: list[DocumentOut]


class Verification(BaseModel):
    """What a verifier learns about a document."""

    genuine: bool = Field(description="Sealed by a trusted seal, unaltered, and in our register")
    verdict: str = Field(description="One line for a person: 真实有效 / 已被篡改 / …")
    failure: str | None = Field(
        default=None,
        description="not_sealed | unknown_seal | bad_signature | digest_mismatch | "
        "seal_not_valid_at_signing | not_registered | not_sealed_yet | file_altered; for a "
        "document the applicant signed also certificate_untrusted | certificate_expired | "
        "certificate_revoked | certificate_subject_mismatch",
    )
    reason: str | None = None
    unaltered: bool | None = Field(
        default=None, description="The file is byte for byte the one issued (SHA-256)"
    )
    still_valid: bool | None = Field(default=None, description="Not revoked")
    status: str | None = None
    number: str | None = None
    title: str | None = None
    application_no: str | None = None
    applicant_name: str | None = None
    item_name: str | None = None
    issued_on: date | None = None
    authority: str | None = Field(default=None, description="The seal's authority (用印机关)")
    seal_id: str | None = None
    signed_at: datetime | None = None
    signature_type: str = Field(
        default="authority_seal",
        description="authority_seal (the authority's electronic seal) | applicant_signature (the "
        "applicant's SM2 signature with its certificate: 告知承诺书, 送达回证)",
    )
    signer: str | None = Field(
        default=None,
        description="签署人: enterprise name and USCC, or a person's masked name (张*三)",
    )
    signer_kind: str | None = Field(default=None, description="enterprise | person")
    signer_uscc: str | None = None
    seal_kind: str | None = Field(default=None, description="公章 | 法定代表人章 | 个人签名")
    certificate_serial: str | None = Field(default=None, description="Signer certificate, hex")
    certificate_issuer: str | None = Field(default=None, description="The trusted CA")
    certificate_not_before: datetime | None = None
    certificate_not_after: datetime | None = None
    certificate_valid_at_signing: bool | None = Field(
        default=None,
        description="Issued by a trusted CA, inside its validity period and not revoked (as "
        "recorded at signing) when the applicant signed",
    )
    revocation_at_signing: str | None = Field(
        default=None, description="The revocation status the CRL gave at signing time"
    )
