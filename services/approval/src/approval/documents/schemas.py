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
    kind: str = Field(description="acceptance | rejection | supplement | approval | denial")
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
        "seal_not_valid_at_signing | not_registered | not_sealed_yet | file_altered",
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
