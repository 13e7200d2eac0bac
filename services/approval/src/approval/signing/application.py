"""Applications that the item's guide requires the legal representative to sign.

The flow (docs/signatures.md): the phone opens a session over the application itself
(``POST /api/v1/signing-sessions`` with ``purpose: application``, the item, the applicant's name,
the business type and the form exactly as they will be submitted), signs it with the enterprise's
法定代表人章 (any other seal kind is refused when the signature arrives: ``seal_kind_not_accepted``),
and the submission carries the signed session (``application_signing_session``). The session is used
once, by that submission; one that signs other content is refused. Nothing is created before the
signature, so no application ever waits half-made for one; without it the submission is refused
with ``legal_representative_signature_required``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.signing.errors import LegalRepresentativeSignatureRequired, SignatureRequired
from approval.signing.models import SigningPurpose
from approval.signing.service import (
    REQUIRED_SEAL_KINDS_BY_VALUE,
    application_target,
    signature_evidence,
    signing_for,
)
from govshared.auth import Principal


async def require_application_signature(
    session: AsyncSession,
    *,
    principal: Principal,
    item_code: str,
    item_version: int,
    guide: dict[str, Any],
    applicant_name: str,
    business_type: str,
    form: dict[str, Any],
    session_id: uuid.UUID | None,
    used_by: str,
) -> dict[str, Any] | None:
    """The signature evidence of a submission whose guide requires one; None when it does not.
    The session is marked used by ``used_by`` (``approval.submission.signature_user``: the request
    as its idempotency record names it)."""
    required = REQUIRED_SEAL_KINDS_BY_VALUE.get(str(guide.get("required_signature")))
    if required is None:
        return None
    if session_id is None:
        raise LegalRepresentativeSignatureRequired(
            f"该事项的申请须由法定代表人以电子印章（{required}）签署：请先通过 "
            "POST /api/v1/signing-sessions（purpose: application）取得待签内容，"
            "在手机上签署后，以 application_signing_session 提交",
            required_seal=required,
        )
    signed = await signing_for(session).consume(
        principal=principal,
        session_id=session_id,
        purpose=SigningPurpose.APPLICATION,
        target=application_target(item_code, item_version),
        by=used_by,
    )
    content = json.loads(signed.content)
    if (
        content.get("applicant_name") != applicant_name
        or content.get("business_type") != business_type
        or content.get("form") != form
        or content.get("required_seal") != required
    ):
        raise SignatureRequired(
            "签署的申请书与本次提交的内容（申请人名称、业务类型或表单）不一致，请重新签署",
            session_id=str(session_id),
        )
    return {**signature_evidence(signed), "seal_kind": required}
