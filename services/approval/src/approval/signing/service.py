"""Signing sessions: hand a phone the canonical content and its SM3 digest, take back the signature.

Two round trips (电子签名法 第十三条: the signature must be the signer's alone and any change to what
was signed detectable): ``open`` returns the content, its SM3 digest and an expiry; ``sign`` takes the
SM2 signature and the seal's certificate, checks both and records them. Opening again while a
session for the same content is open returns that session, and posting the same signature again
returns the same answer, so a phone that lost its connection just repeats its request. A signed
session is used once (``consume``) by the act it signs: a replay is refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.catalogue.schemas import REQUIRED_SEAL_KINDS
from approval.clients.license import LicenseClient
from approval.documents.models import Document, DocumentKind, DocumentStatus
from approval.documents.repository import DocumentRepository
from approval.documents.service import document_reference, party_of
from approval.documents.signed import register_signed
from approval.errors import ItemNotFound
from approval.forms import validate_form
from approval.models import Application
from approval.repository import ApplicationRepository
from approval.signing.errors import (
    SealKindNotAccepted,
    SignatureRequired,
    SigningPurposeNotAllowed,
    SigningSessionExpired,
    SigningSessionNotFound,
    SigningSessionReplayed,
    SigningUnavailable,
)
from approval.signing.models import SessionStatus, SigningPurpose, SigningSession
from approval.signing.schemas import SignatureIn
from approval.transitions import append_audit
from govshared.applications import ApplicationState
from govshared.auth import Principal
from govshared.chinatime import CHINA
from govshared.contracts import commitment_digest
from govshared.db import end_read
from govshared.events import ReformMode
from govshared.seal import canonical_json, sm2_verify, sm3_hex
from govshared.signing import SignatureVerifier, SubjectKind, VerifiedSignature, parse_certificate

# Fields that differ between two sessions over the same act (so a signature is never reusable).
PER_SESSION = ("session_id", "issued_at")

WITHDRAWAL_STATEMENT = "本申请人自愿撤回上述行政许可申请。"
RECEIPT_STATEMENT = "受送达人已收到上述文书。"
APPLICATION_STATEMENT = (
    "本申请人对申请材料实质内容的真实性负责（《中华人民共和国行政许可法》第三十一条），"
    "由法定代表人以电子印章签署（《中华人民共和国电子签名法》第十四条）。"
)
# Acts a natural person may sign for the enterprise with a personal signing key (个人签名).
PERSON_MAY_SIGN = frozenset({SigningPurpose.RECEIPT.value})
REQUIRED_SEAL_KINDS_BY_VALUE = {k.value: v for k, v in REQUIRED_SEAL_KINDS.items()}
RECEIPT_KINDS = frozenset(
    {DocumentKind.APPROVAL.value, DocumentKind.DENIAL.value, DocumentKind.REJECTION.value}
)


def application_target(item_code: str, item_version: int) -> str:
    """What an application session is for: the item and the guide's version it is submitted under."""
    return f"{item_code}@v{item_version}"


def commitment_target(item_code: str, reform_version: int) -> str:
    """What a commitment session is for: the item and license's version of its text."""
    return f"{item_code}@{reform_version}"


class SigningService:
    """Opens sessions, checks signatures, and lets the signed act use a session once."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        verifier: SignatureVerifier | None,
        now: Callable[[], datetime],
        lifetime: timedelta,
    ) -> None:
        self.session = session
        self.verifier = verifier
        self.now = now
        self.lifetime = lifetime

    async def _open(
        self,
        *,
        principal: Principal,
        purpose: SigningPurpose,
        target: str,
        application_id: uuid.UUID | None,
        basis: dict[str, Any],
    ) -> tuple[SigningSession, bool]:
        """The open session over ``basis`` (same signer, act and content), or a new one."""
        assert principal.uscc is not None
        now = self.now()
        candidates = await self.session.scalars(
            select(SigningSession).where(
                SigningSession.subject_uscc == principal.uscc,
                SigningSession.purpose == purpose.value,
                SigningSession.target == target,
                SigningSession.status == SessionStatus.OPEN.value,
                SigningSession.expires_at > now,
            )
        )
        for existing in candidates:
            content = json.loads(existing.content)
            if {k: v for k, v in content.items() if k not in PER_SESSION} == basis:
                return existing, False
        session_id = uuid.uuid4()
        content = canonical_json(
            {**basis, "session_id": str(session_id), "issued_at": now.astimezone(CHINA)}
        )
        row = SigningSession(
            id=session_id,
            purpose=purpose.value,
            target=target,
            application_id=application_id,
            subject_uscc=principal.uscc,
            requested_by=f"{principal.role.value}:{principal.subject}",
            content=content.decode(),
            digest=sm3_hex(content),
            created_at=now,
            expires_at=now + self.lifetime,
            status=SessionStatus.OPEN.value,
        )
        self.session.add(row)
        await self.session.flush()
        return row, True

    async def open_commitment(
        self,
        *,
        principal: Principal,
        item_code: str,
        applicant_name: str,
        license_client: LicenseClient,
    ) -> tuple[SigningSession, bool]:
        """A session over the item's published 告知承诺书 (license's text), bound to the applicant."""
        assert principal.uscc is not None
        item = await ITEM_CACHE.get(ItemRepository(self.session), item_code)
        if item is None:
            raise ItemNotFound(f"事项编码 {item_code} 不在事项目录中", item_code=item_code)
        await end_read(self.session)
        reform = await license_client.reform_mode(
            item_code=item.code,
            jurisdiction=item.jurisdiction,
            on=self.now().astimezone(CHINA).date(),
        )
        if reform is None or reform.mode is not ReformMode.COMMITMENT or not reform.commitment_text:
            raise SigningPurposeNotAllowed(
                "该事项在本地未实行告知承诺或尚未公布告知承诺书，无需签署承诺书",
                item_code=item.code,
            )
        text = reform.commitment_text
        basis = {
            "purpose": SigningPurpose.COMMITMENT.value,
            "title": "告知承诺书",
            "item_code": item.code,
            "item_name": item.name,
            "jurisdiction": item.jurisdiction,
            "reform_version": reform.version,
            "text": text,
            "text_sha256": commitment_digest(text),
            "applicant_uscc": principal.uscc,
            "applicant_name": applicant_name,
        }
        return await self._open(
            principal=principal,
            purpose=SigningPurpose.COMMITMENT,
            target=commitment_target(item.code, reform.version),
            application_id=None,
            basis=basis,
        )

    async def open_application(
        self,
        *,
        principal: Principal,
        item_code: str,
        applicant_name: str,
        business_type: str,
        form: dict[str, Any],
    ) -> tuple[SigningSession, bool]:
        """A session over the application itself, for items whose guide requires the legal
        representative's signature: exactly the form that will be submitted, bound to the
        applicant and the guide's version (approval.signing.application checks the match)."""
        assert principal.uscc is not None
        item = await ITEM_CACHE.get(ItemRepository(self.session), item_code)
        if item is None:
            raise ItemNotFound(f"事项编码 {item_code} 不在事项目录中", item_code=item_code)
        required = item.guide.get("required_signature")
        if required not in REQUIRED_SEAL_KINDS_BY_VALUE:
            raise SigningPurposeNotAllowed(
                "该事项的办事指南不要求签署申请书，直接提交即可", item_code=item.code
            )
        validate_form(item.guide, form)
        basis = {
            "purpose": SigningPurpose.APPLICATION.value,
            "title": "行政许可申请书",
            "item_code": item.code,
            "item_name": item.name,
            "item_version": item.version,
            "jurisdiction": item.jurisdiction,
            "applicant_uscc": principal.uscc,
            "applicant_name": applicant_name,
            "business_type": business_type,
            "form": form,
            "required_seal": REQUIRED_SEAL_KINDS_BY_VALUE[required],
            "statement": APPLICATION_STATEMENT,
        }
        return await self._open(
            principal=principal,
            purpose=SigningPurpose.APPLICATION,
            target=application_target(item.code, item.version),
            application_id=None,
            basis=basis,
        )

    async def open_for_application(
        self, *, principal: Principal, application: Application, purpose: SigningPurpose
    ) -> tuple[SigningSession, bool]:
        """A session over an act on the application (its applicant's only)."""
        if principal.uscc != application.applicant_uscc:
            raise SigningPurposeNotAllowed("只有申请人本人可以签署")
        basis: dict[str, Any] = {
            "purpose": purpose.value,
            "application_id": str(application.id),
            "application_no": application.application_no,
            "item_code": application.item_code,
            "item_name": application.item_name,
            "applicant_uscc": application.applicant_uscc,
            "applicant_name": application.applicant_name,
        }
        target = str(application.id)
        if purpose is SigningPurpose.WITHDRAWAL:
            basis.update(title="撤回行政许可申请", statement=WITHDRAWAL_STATEMENT)
        elif purpose is SigningPurpose.RECEIPT:
            document = await self._served_decision(application)
            target = str(document.id)
            basis.update(
                title="送达回证",
                statement=RECEIPT_STATEMENT,
                document_id=str(document.id),
                document_number=document.number,
                document_title=document.title,
                document_issued_on=document.issued_on.isoformat(),
                document_content_sm3=document.content_digest,
                document_pdf_sha256=document.pdf_sha256,
            )
        else:
            raise SigningPurposeNotAllowed(
                f"申请不能发起「{purpose.value}」签署", purpose=purpose.value
            )
        return await self._open(
            principal=principal,
            purpose=purpose,
            target=target,
            application_id=application.id,
            basis=basis,
        )

    async def _served_decision(self, application: Application) -> Document:
        """The latest sealed decision (准予/不予许可, 不予受理) of the case: what a receipt is for."""
        documents = await DocumentRepository(self.session).for_application(application.id)
        decisions = [
            d
            for d in documents
            if d.kind in RECEIPT_KINDS and d.status == DocumentStatus.VALID.value
        ]
        if not decisions:
            raise SigningPurposeNotAllowed("本申请尚无已生效（已签章）的决定文书，无需签署送达回证")
        return max(decisions, key=lambda d: d.issued_at)

    async def sign_receipt(
        self, *, principal: Principal, application: Application, session_id: uuid.UUID
    ) -> SigningSession:
        """Use a signed 送达回证 and put it in the case's trail as proof of service."""
        row = await self.get(principal=principal, session_id=session_id)
        if row.purpose != SigningPurpose.RECEIPT.value or row.application_id != application.id:
            raise SignatureRequired("所附签署会话不是本申请的送达回证", session_id=str(session_id))
        by = f"receipt:{application.id}"
        if row.status == SessionStatus.CONSUMED.value and row.consumed_by == by:
            return row  # in the trail already: the phone repeated itself
        row = await self.consume(
            principal=principal,
            session_id=session_id,
            purpose=SigningPurpose.RECEIPT,
            target=row.target,
            by=by,
        )
        content = json.loads(row.content)
        applications = ApplicationRepository(self.session)
        # The row lock orders this entry with lifecycle actions (as notify's proof of service).
        locked = await applications.get_for_update(application.id)
        assert locked is not None
        last_seq, last_hash = await applications.chain_end(application.id)
        state = ApplicationState(locked.state)
        now = self.now()
        # The signed 送达回证 becomes a PDF of the case that anyone can verify (documents.signed).
        receipt = await register_signed(
            self.session, kind=DocumentKind.RECEIPT, party=party_of(locked), signed=row, at=now
        )
        await append_audit(
            self.session,
            application_id=application.id,
            seq=last_seq + 1,
            prev_hash=last_hash,
            action="receipt_signed",
            from_state=state,
            to_state=state,
            actor=(principal.subject, principal.role.value),
            at=now,
            details={
                "document_number": content["document_number"],
                "document_title": content["document_title"],
                "document_pdf_sha256": content["document_pdf_sha256"],
                "proof_of_service": "送达回证（申请人电子签名）",
                "signed_document": document_reference(receipt),
                **signature_evidence(row),
            },
        )
        return row

    async def get(self, *, principal: Principal, session_id: uuid.UUID) -> SigningSession:
        """A session of the caller's enterprise (404 for anyone else's)."""
        row = await self.session.get(SigningSession, session_id)
        if row is None or row.subject_uscc != principal.uscc:
            raise SigningSessionNotFound(f"签署会话 {session_id} 不存在")
        return row

    async def sign(
        self, *, principal: Principal, session_id: uuid.UUID, body: SignatureIn
    ) -> SigningSession:
        """Check and record the phone's signature; the same signature again is the same answer."""
        row = await self.get(principal=principal, session_id=session_id)
        signature = body.signature.lower()
        if row.status != SessionStatus.OPEN.value:
            if _same_signing(row, body, signature):
                return row  # the phone repeats itself after a dropped connection
            raise SigningSessionReplayed(
                "该签署会话已签署，不能再次签署", session_status=row.status, session_id=str(row.id)
            )
        now = self.now()
        if now > row.expires_at:
            raise SigningSessionExpired(
                f"签署会话已于 {row.expires_at.astimezone(CHINA):%Y-%m-%d %H:%M:%S} 过期",
                expires_at=row.expires_at.isoformat(),
            )
        if self.verifier is None:
            raise SigningUnavailable("未配置可信的电子认证服务机构，无法验证电子签名")
        # A 送达回证 may be signed by a natural person for the enterprise (its legal representative
        # or the person in charge of receiving documents, 民事诉讼法 第八十七条、第八十八条), with a
        # personal signing key; every other act wants a seal bound to the applicant's USCC.
        person_signs = (
            row.purpose in PERSON_MAY_SIGN
            and self.verifier.read(body.certificate).subject_kind is SubjectKind.PERSON
        )
        verified: VerifiedSignature = await self.verifier.verify(
            certificate=body.certificate,
            signature=signature,
            expected_digest=bytes.fromhex(row.digest),
            signed_digest=body.digest,
            at=now,
            uscc=None if person_signs else row.subject_uscc,
        )
        info = verified.certificate
        if row.purpose == SigningPurpose.APPLICATION.value:
            required = json.loads(row.content).get("required_seal")
            if required and info.seal_kind != required:
                raise SealKindNotAccepted(
                    f"该事项的申请须以「{required}」签署，所用证书为「{info.seal_kind or '未标明'}」",
                    required_seal=required,
                    certificate_seal_kind=info.seal_kind,
                )
        # Only an open session takes a signature: of two phones posting at once, one wins.
        result = await self.session.execute(
            update(SigningSession)
            .where(SigningSession.id == row.id, SigningSession.status == SessionStatus.OPEN.value)
            .values(
                status=SessionStatus.SIGNED.value,
                signature=signature,
                certificate=body.certificate,
                certificate_serial=f"{info.serial:x}",
                signer=verified.signer,
                signed_at=now,
                revocation=verified.revocation.as_json() if verified.revocation else None,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise SigningSessionReplayed("该签署会话已被另一次签署使用")
        await self.session.refresh(row)
        return row

    async def consume(
        self,
        *,
        principal: Principal,
        session_id: uuid.UUID | None,
        purpose: SigningPurpose,
        target: str,
        by: str,
    ) -> SigningSession:
        """The signed session for this act, marked used (once; ``by`` may repeat its own use)."""
        if session_id is None:
            raise SignatureRequired(
                "请先通过 POST /api/v1/signing-sessions 取得待签内容，在手机上签署后再提交",
                purpose=purpose.value,
            )
        row = await self.session.get(SigningSession, session_id)
        if row is None or row.subject_uscc != principal.uscc:
            raise SigningSessionNotFound(f"签署会话 {session_id} 不存在")
        if row.purpose != purpose.value or row.target != target:
            raise SignatureRequired(
                "所附签署会话签署的不是本项操作的内容", session_id=str(session_id)
            )
        if row.status == SessionStatus.OPEN.value:
            raise SignatureRequired("签署会话尚未签署", session_id=str(session_id))
        if row.status == SessionStatus.CONSUMED.value:
            if row.consumed_by == by:
                return row  # the same request, retried with its idempotency key
            raise SigningSessionReplayed(
                "该签名已用于另一次操作，不能重复使用", consumed_by=row.consumed_by
            )
        result = await self.session.execute(
            update(SigningSession)
            .where(SigningSession.id == row.id, SigningSession.status == SessionStatus.SIGNED.value)
            .values(status=SessionStatus.CONSUMED.value, consumed_at=self.now(), consumed_by=by)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise SigningSessionReplayed("该签名已用于另一次操作，不能重复使用")
        await self.session.refresh(row)
        return row


def _same_signing(row: SigningSession, body: SignatureIn, signature: str) -> bool:
    """True when a post to a session already signed is the signer's own repeat: the same
    signature, or (a phone that signed again after losing the answer: SM2 signatures are
    randomised) another valid signature of the session's digest under the same certificate."""
    if row.signature == signature:
        return True
    if row.certificate is None or body.certificate.strip() != row.certificate.strip():
        return False
    if body.digest is not None and body.digest.lower() != row.digest:
        return False
    try:
        public_key = parse_certificate(row.certificate).public_key
    except ValueError:
        return False
    return sm2_verify(public_key, bytes.fromhex(row.digest), signature)


def signature_evidence(row: SigningSession) -> dict[str, Any]:
    """What the trail keeps of a signature: enough for anyone to check it again."""
    return {
        "signing_session": str(row.id),
        "signed_digest_sm3": row.digest,
        "signature": row.signature,
        "certificate_serial": row.certificate_serial,
        "signer": row.signer,
        "signed_at": row.signed_at.astimezone(UTC).isoformat() if row.signed_at else None,
    }


def signing_for(session: AsyncSession) -> SigningService:
    """A signing service that only uses signed sessions (no verifier: the signature was checked
    when it arrived)."""
    return SigningService(
        session, verifier=None, now=lambda: datetime.now(UTC), lifetime=timedelta(minutes=10)
    )
