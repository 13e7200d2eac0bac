"""Signing sessions on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from approval.signing.models import SigningPurpose
from govshared.applications import BusinessType
from govshared.freeform import BoundedJson
from govshared.seal import DEFAULT_SIGNER_ID

HEX_SIGNATURE = r"^[0-9a-fA-F]{128}$"
HEX_DIGEST = r"^[0-9a-fA-F]{64}$"


class ApplicationSigningCreate(BaseModel):
    """Ask for a signature on an act about an existing application."""

    model_config = ConfigDict(extra="forbid")

    purpose: SigningPurpose = Field(description="withdrawal 撤回申请 · receipt 送达回证")


class CommitmentSigningCreate(BaseModel):
    """Ask to sign, before submitting the application it goes with, an item's 告知承诺书
    (``commitment``) or the application itself (``application``: items whose guide requires the
    legal representative's signature)."""

    model_config = ConfigDict(extra="forbid")

    purpose: Literal[SigningPurpose.COMMITMENT, SigningPurpose.APPLICATION] = Field(
        default=SigningPurpose.COMMITMENT,
        description="commitment 告知承诺书 · application 申请书（法定代表人签署）",
    )
    item_code: str = Field(min_length=1, max_length=40)
    applicant_name: str = Field(min_length=1, max_length=200, description="申请人名称")
    business_type: BusinessType = Field(
        default=BusinessType.NEW, description="application only: as it will be submitted"
    )
    form: BoundedJson = Field(
        default_factory=dict,
        description="application only: the form exactly as it will be submitted",
    )


class SignatureIn(BaseModel):
    """What the phone posts back."""

    model_config = ConfigDict(extra="forbid")

    signature: str = Field(
        pattern=HEX_SIGNATURE, description="SM2 signature r‖s over the digest, hex"
    )
    certificate: str = Field(
        min_length=100, max_length=20_000, description="The seal's X.509 certificate, PEM"
    )
    digest: str | None = Field(
        default=None,
        pattern=HEX_DIGEST,
        description="The SM3 digest the phone signed (tells 'other content' from 'wrong key')",
    )


class SigningSessionOut(BaseModel):
    """A signing session: what to sign, until when, and (once signed) by whom."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    purpose: SigningPurpose
    target: str
    application_id: uuid.UUID | None
    content: str = Field(description="The canonical content (JSON text), exactly what is digested")
    digest: str = Field(description="SM3 of content, hex: the phone signs these 32 bytes")
    digest_algorithm: str = "SM3"
    signature_algorithm: str = Field(
        default="SM2-with-SM3",
        description=f"SM2 (GB/T 32918.2) with the default signer id {DEFAULT_SIGNER_ID}",
    )
    created_at: datetime
    expires_at: datetime
    status: str = Field(description="open 待签署 · signed 已签署 · consumed 已使用")
    signer: str | None = Field(default=None, description="签署人（企业名称及统一社会信用代码）")
    certificate_serial: str | None = None
    signed_at: datetime | None = None
    consumed_by: str | None = None


class ReceiptIn(BaseModel):
    """A signed 送达回证 to put in the case's trail."""

    model_config = ConfigDict(extra="forbid")

    signing_session: uuid.UUID = Field(description="已签署的送达回证签署会话 (purpose receipt)")
