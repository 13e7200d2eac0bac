"""Issuing sealed documents in the transition's unit of work, serving and verifying them."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.documents.errors import DocumentNotFound, DocumentNotSealed
from approval.documents.models import SIGNED_KINDS, Document, DocumentKind, DocumentStatus
from approval.documents.repository import DocumentRepository
from approval.documents.schemas import Verification
from approval.documents.signed import VERDICTS as SIGNED_VERDICTS
from approval.documents.signed import SignedPayload, check_signed, read_signed, signed_pdf
from approval.models import Application
from govshared.chinatime import CHINA
from govshared.db import end_read
from govshared.seal import (
    FAILURE_LABELS,
    Failure,
    SealBook,
    SealIdentity,
    SealNotValid,
    SealSignature,
    SealVerifier,
    canonical_json,
    sm3_digest,
)
from govshared.signing import SignatureVerifier
from govshared.storage import Storage

FORMAT = "onestop-document/1"
LAW = "《中华人民共和国行政许可法》"
REMEDY = (
    "如不服本决定，可以自收到本文书之日起六十日内依法申请行政复议，"
    "或者自收到本文书之日起六个月内依法向人民法院提起行政诉讼。"
)

TITLES: dict[DocumentKind, str] = {
    DocumentKind.ACCEPTANCE: "受理通知书",
    DocumentKind.REJECTION: "不予受理通知书",
    DocumentKind.SUPPLEMENT: "补正告知书",
    DocumentKind.APPROVAL: "准予行政许可决定书",
    DocumentKind.DENIAL: "不予行政许可决定书",
    DocumentKind.PAUSE: "特别程序告知书",
}
NUMBER_WORDS: dict[DocumentKind, str] = {
    DocumentKind.ACCEPTANCE: "受字",
    DocumentKind.REJECTION: "不受字",
    DocumentKind.SUPPLEMENT: "补字",
    DocumentKind.APPROVAL: "准许字",
    DocumentKind.DENIAL: "不许字",
    DocumentKind.PAUSE: "特字",
}
# What a document's signed content keeps of the transition's details.
CONTENT_DETAILS = (
    "missing_items",
    "opinion",
    "materials",
    "tolerated_materials",
    "deliver_by",
    "accepted_on",
    "after_supplement",
    "decision_limit_days",
    "decision_due_on",
    "joint_handling",
    "pause_reason",
    "expected_days",
    "expected_end_on",
    "cited_opinions",
)
OPINION_LABELS = {"disagree": "不同意", "conditional": "附条件同意", "agree": "同意"}
PAUSE_LABELS = {
    "hearing": "听证",
    "tendering": "招标",
    "auction": "拍卖",
    "inspection": "检验",
    "testing": "检测",
    "quarantine": "检疫",
    "appraisal": "鉴定",
    "expert_review": "专家评审",
}
JOINT_LABELS = {"unified": "统一办理", "joint": "联合办理", "centralised": "集中办理"}
# The 补正告知书's promise (Art. 32(1)(5)); the clocks do exactly this (approval.clocks.service).
SUPPLEMENT_PROMISE = (
    "你（单位）按照本告知书的要求提交全部补正材料的，本机关自收到全部补正材料之日起受理，"
    f"作出行政许可决定的期限自该日起计算（{LAW}第三十二条第一款第（五）项、第四十二条）。"
    "本机关在收到全部补正材料之日起五个工作日内出具受理通知书；逾期未出具的，"
    "自收到全部补正材料之日起即为受理。"
)
PARTY_FIELDS = (
    "id",
    "application_no",
    "item_code",
    "item_version",
    "item_name",
    "applicant_name",
    "applicant_uscc",
    "jurisdiction",
    "submitted_at",
)
VERDICTS: dict[str, str] = {
    "not_sealed": "不是本系统签发的电子文书（未找到电子印章签名）",
    "not_registered": "签发登记簿中查无此文书",
    "not_sealed_yet": "文书已作出，正在加盖电子印章，尚未签发，请稍后再核验",
    "file_altered": "文件与签发存档不一致，可能已被篡改",
}


@dataclass(frozen=True, slots=True)
class Sealing:
    """What issuing and verifying need, made once at start-up."""

    seals: SealBook
    storage: Storage
    public_base_url: str

    def verify_url(self) -> str:
        """The public verification page."""
        return f"{self.public_base_url.rstrip('/')}/verify"

    async def check_seal(self, at: datetime, authority: str) -> None:
        """Refuse a decision now if the authority's local seal cannot sign now (SealNotValid, 409).

        A local seal's validity is known without a call; a seal service's is checked when the
        sealer signs (a failure there retries until the service or the seal is fixed).
        """
        identity_now = getattr(self.seals.signer_for(authority), "identity_now", None)
        if identity_now is None:
            return
        seal: SealIdentity = identity_now()
        if not seal.valid_at(at):
            raise SealNotValid(
                f"印章 {seal.seal_id}（{seal.authority}）有效期为 "
                f"{seal.valid_from:%Y-%m-%d} 至 {seal.valid_until:%Y-%m-%d}，当前不能用印",
                seal_id=seal.seal_id,
                valid_from=seal.valid_from.isoformat(),
                valid_until=seal.valid_until.isoformat(),
            )


def legal_basis_text(guide: Mapping[str, Any]) -> str:
    """《法》第…条；… from the guide."""
    return "；".join(f"{b['law']}{b['articles']}" for b in guide.get("legal_basis", []))


def cn_date(value: str) -> str:
    """2021-09-22 → 2021年9月22日."""
    day = date.fromisoformat(value)
    return f"{day.year}年{day.month}月{day.day}日"


def acceptance_paragraphs(opening: str, details: Mapping[str, Any]) -> list[str]:
    """受理通知书: 材料齐全, after a complete 补正, or 容缺受理 with the list and date (Art. 32)."""
    tolerated = list(details.get("tolerated_materials", []))
    accepted_on = details.get("accepted_on")
    if tolerated:
        items = "；".join(f"{i}. {name}" for i, name in enumerate(tolerated, 1))
        first = (
            f"{opening}，经审查，申请事项属于本机关职权范围。申请材料尚缺下列材料：{items}。"
            f"本机关决定容缺受理，请于{cn_date(details['deliver_by'])}前补交上述材料；"
            "逾期未补交的，本机关将依法处理。"
        )
    elif details.get("after_supplement"):
        first = (
            f"{opening}，你（单位）已按照补正告知书的要求提交全部补正材料，申请材料齐全、符合法定形式。"
            f"根据{LAW}第三十二条第一款第（五）项的规定，本机关自收到全部补正材料之日起予以受理。"
        )
    else:
        first = (
            f"{opening}，经审查，申请事项属于本机关职权范围，申请材料齐全、符合法定形式。"
            f"根据{LAW}第三十二条第一款第（五）项的规定，本机关决定予以受理。"
        )
    result = [first]
    if accepted_on:
        limit = details.get("decision_limit_days")
        joint = JOINT_LABELS.get(str(details.get("joint_handling")))
        due = details.get("decision_due_on")
        when = f"受理日期：{cn_date(accepted_on)}。"
        if limit:
            when += f"本机关将自受理之日起{limit}个工作日内"
            when += f"（{cn_date(due)}前）" if due else ""
            when += "作出行政许可决定"
            when += f"（本事项依法{joint}，第四十二条第二款）" if joint else "（第四十二条）"
            when += "；依法需要听证、招标、拍卖、检验、检测、检疫、鉴定和专家评审的，所需时间不计算在内。"
        result.append(when)
    else:
        result.append("本机关将在法定期限内作出行政许可决定。")
    return result


def paragraphs(
    kind: DocumentKind,
    *,
    party: Mapping[str, Any],
    guide: Mapping[str, Any],
    reason: str | None,
    details: Mapping[str, Any],
) -> list[str]:
    """The body of a document, as printed and as signed."""
    submitted: date = party["submitted_at"].astimezone(CHINA).date()
    opening = (
        f"你（单位）于{submitted.year}年{submitted.month}月{submitted.day}日提出的"
        f"「{party['item_name']}」（事项编码 {party['item_code']}）申请"
        f"（申请编号：{party['application_no']}）"
    )
    basis = legal_basis_text(guide)
    if kind is DocumentKind.ACCEPTANCE:
        return acceptance_paragraphs(opening, details)
    if kind is DocumentKind.PAUSE:
        procedure = PAUSE_LABELS.get(str(details.get("pause_reason")), "特别程序")
        expected = details.get("expected_days")
        end = details.get("expected_end_on")
        return [
            f"{opening}，依法需要进行{procedure}。根据{LAW}第四十五条的规定，"
            f"{procedure}所需时间不计算在行政许可期限内。"
            + (f"说明：{reason}。" if reason else ""),
            f"预计所需时间为{expected}个工作日"
            + (f"，预计于{cn_date(end)}结束" if end else "")
            + "；结束后恢复计算办理期限，本机关将另行告知。",
        ]
    if kind is DocumentKind.REJECTION:
        return [
            f"{opening}，经审查，{reason or '不符合受理条件'}。"
            f"根据{LAW}第三十二条第一款的规定，本机关决定不予受理。",
            REMEDY,
        ]
    if kind is DocumentKind.SUPPLEMENT:
        missing = list(details.get("missing_items", []))
        items = "；".join(f"{i}. {name}" for i, name in enumerate(missing, 1))
        extra = f"说明：{reason}。" if reason else ""
        return [
            f"{opening}，经审查，申请材料不齐全或者不符合法定形式。"
            f"根据{LAW}第三十二条第一款第（四）项的规定，请一次性补正下列材料：{items}。{extra}",
            SUPPLEMENT_PROMISE,
        ]
    if kind is DocumentKind.APPROVAL:
        opinion = details.get("opinion")
        result = guide.get("result_type")
        return [
            f"{opening}，经审查，符合法定条件、标准。根据{basis}及{LAW}第三十八条第一款的规定，"
            f"本机关决定准予行政许可。" + (f"审查意见：{opinion}。" if opinion else ""),
            f"本机关将依法颁发「{result}」。" if result else "本决定自作出之日起生效。",
        ]
    return [
        f"{opening}，经审查，{reason or '不符合法定条件、标准'}。"
        f"根据{basis}及{LAW}第三十八条第二款的规定，本机关决定不予行政许可。",
        *cited_opinions_paragraphs(details),
        REMEDY,
    ]


def cited_opinions_paragraphs(details: Mapping[str, Any]) -> list[str]:
    """The consulted departments' disagreements a denial cites (review chains, 并联审批): each
    department, its opinion and its reasons, as the decision's audit entry records them."""
    cited = [o for o in details.get("cited_opinions", []) if isinstance(o, Mapping)]
    if not cited:
        return []
    opinions = "；".join(
        f"{o.get('name') or o.get('department')}出具{OPINION_LABELS.get(str(o.get('outcome')), '')}"
        f"意见，理由：{o.get('reasons') or '未说明'}"
        for o in cited
    )
    return [f"本机关依照{LAW}第二十六条第二款征求了有关部门的意见。{opinions}。"]


class DocumentIssuer:
    """Registers a document inside the unit of work that changes the application's state.

    The transition decides the document: its number and its full content (what will be signed)
    are fixed and registered, status ``pending``, in the transition's own transaction. Signing,
    laying out the PDF and storing it are the sealer's work (``DocumentSealer``, in the worker),
    so that a decision costs the request a few inserts and not 10–30 ms of PDF layout; the
    pending row is the sealer's queue, so no decision is ever without its document.
    """

    def __init__(self, session: AsyncSession, *, sealing: Sealing) -> None:
        self.session = session
        self.sealing = sealing
        self.documents = DocumentRepository(session)

    async def issue(
        self,
        *,
        kind: DocumentKind,
        party: Mapping[str, Any],
        reason: str | None,
        details: Mapping[str, Any],
        at: datetime,
    ) -> dict[str, Any]:
        """Number, compose and register one document for sealing; its row."""
        items = ItemRepository(self.session)
        item = await ITEM_CACHE.get(items, party["item_code"])
        guide: Mapping[str, Any] = item.guide if item is not None else {}
        if item is None or item.version != party["item_version"]:
            version = await items.version(party["item_code"], party["item_version"])
            guide = version.guide if version is not None else guide
        # The deciding authority's own seal seals it (Art. 38: the decision is the authority's).
        authority = guide.get("deciding_authority") or (item.authority if item else "")
        await self.sealing.check_seal(at, authority)
        issued_on = at.astimezone(CHINA).date()
        number = (
            f"{party['jurisdiction']}〔{issued_on.year}〕{NUMBER_WORDS[kind]}"
            f"第{secrets.token_hex(4).upper()}号"
        )
        content: dict[str, Any] = {
            "format": FORMAT,
            "kind": kind.value,
            "title": TITLES[kind],
            "number": number,
            "authority": authority,
            "application_no": party["application_no"],
            "item_code": party["item_code"],
            "item_name": party["item_name"],
            "applicant_name": party["applicant_name"],
            "applicant_uscc": party["applicant_uscc"],
            "legal_basis": legal_basis_text(guide),
            "reason": reason,
            "details": {k: v for k, v in details.items() if k in CONTENT_DETAILS},
            "paragraphs": paragraphs(
                kind, party=party, guide=guide, reason=reason, details=details
            ),
            "issued_on": issued_on.isoformat(),
        }
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "application_id": party["id"],
            "kind": kind.value,
            "number": number,
            "title": TITLES[kind],
            "issued_on": issued_on,
            "issued_at": at,
            "content": content,
            "content_digest": sm3_digest(canonical_json(content)).hex(),
            "status": DocumentStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": at,
        }
        await self.documents.insert(row)
        return row


@dataclass(frozen=True, slots=True)
class SealedFile:
    """What sealing (or, for a document the applicant signed, rendering) one document produced."""

    signature: dict[str, Any]  # SealSignature as JSON, or the applicant's signature record
    seal_id: str  # the seal's id, or the applicant's certificate serial
    pdf: bytes
    storage_key: str


async def seal_document(sealing: Sealing, document: Document) -> SealedFile:
    """Sign a registered document's content, lay out its PDF and store it (a document the
    applicant signed is laid out with its signature, and not sealed again)."""
    # reportlab and pypdf are imported by the first document sealed, not at the web's start.
    from approval.documents.render import render_pdf

    digest = bytes.fromhex(document.content_digest)
    verify_url = sealing.verify_url()
    qr = f"{verify_url}?{urlencode({'number': document.number, 'digest': digest.hex()})}"
    key = f"documents/{document.application_id}/{document.id}.pdf"
    if document.kind in SIGNED_KINDS:
        pdf = signed_pdf(document, verify_url=verify_url, qr=qr)
        await sealing.storage.put(key, pdf, content_type="application/pdf")
        return SealedFile(
            signature=dict(document.signature or {}),
            seal_id=str(document.seal_id),
            pdf=pdf,
            storage_key=key,
        )
    signature = await sealing.seals.signer_for(str(document.content["authority"])).sign(digest)
    pdf = render_pdf(content=document.content, signature=signature, verify_url=verify_url, qr=qr)
    await sealing.storage.put(key, pdf, content_type="application/pdf")
    return SealedFile(
        signature=signature.model_dump(mode="json"),
        seal_id=signature.seal.seal_id,
        pdf=pdf,
        storage_key=key,
    )


def document_reference(row: Mapping[str, Any]) -> dict[str, str]:
    """What the transition's audit entry and event say about the document issued with it."""
    return {
        "id": str(row["id"]),
        "kind": str(row["kind"]),
        "number": str(row["number"]),
        "title": str(row["title"]),
        "content_sm3": str(row["content_digest"]),
    }


def party_of(application: Application) -> dict[str, Any]:
    """The application fields a document names."""
    return {name: getattr(application, name) for name in PARTY_FIELDS}


class DocumentService:
    """Reading and verifying documents."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        sealing: Sealing,
        verifier: SignatureVerifier | None = None,
    ) -> None:
        self.session = session
        self.sealing = sealing
        # Checks the certificates of documents the applicant signed (approval.documents.signed).
        self.verifier = verifier
        self.documents = DocumentRepository(session)

    async def list(self, *, application: Application) -> list[Document]:
        """The application's documents."""
        return await self.documents.for_application(application.id)

    async def pdf(
        self, *, application: Application, document_id: uuid.UUID
    ) -> tuple[Document, bytes]:
        """A document's PDF, if it belongs to the application (fetched from storage once the
        row's read has ended: object storage is a network call)."""
        document = await self.documents.get(document_id)
        if document is None or document.application_id != application.id:
            raise DocumentNotFound(f"文书 {document_id} 不存在")
        if document.storage_key is None:
            raise DocumentNotSealed(
                f"文书 {document.number} 正在加盖电子印章，请稍后下载", retry_after_seconds=2
            )
        # A detached row keeps its values through the read's end (a rollback would expire them);
        # its storage key, once set by the sealer, never changes: nothing to check again after.
        self.session.expunge(document)
        await end_read(self.session)
        return document, await self.sealing.storage.get(document.storage_key)

    async def _verifier(self, authority: str) -> SealVerifier:
        return SealVerifier(await self.sealing.seals.trusted(authority))

    async def verify_pdf(self, pdf: bytes) -> Verification:
        """Check an uploaded PDF: its seal, its content, and that it is the file we issued."""
        from approval.documents.render import read_sealed

        sealed = read_sealed(pdf)
        if sealed is None:
            signed = read_signed(pdf)
            if signed is None:
                return _failed("not_sealed")
            return await self._verify_signed_pdf(pdf, signed)
        content, signature = sealed
        found = await self._check(content, signature)
        if not found.genuine:
            return found
        document = await self.documents.by_number(str(content.get("number")))
        if document is None or document.content_digest != signature.digest:
            return _failed("not_registered", base=found)
        unaltered = hashlib.sha256(pdf).hexdigest() == document.pdf_sha256
        if not unaltered:
            return _failed("file_altered", base=found).model_copy(update={"unaltered": False})
        return _with_status(found.model_copy(update={"unaltered": True}), document)

    async def verify_number(
        self, *, number: str, sha256: str | None = None, digest: str | None = None
    ) -> Verification:
        """Check a document by its number, and the hash of the copy in hand (file or QR digest).

        A hash that does not match answers "not genuine" and nothing else: whoever holds a wrong
        copy, or only a number and a guess, learns nothing of the document, its applicant or item.
        """
        document = await self.documents.by_number(number.strip())
        if document is None:
            return _failed("not_registered").model_copy(update={"number": number})
        # Registered, not yet sealed (or, for a document the applicant signed, not yet laid out
        # by the sealer): whatever its kind, there is no issued file to check yet.
        if document.status == DocumentStatus.PENDING.value or document.signature is None:
            if sha256 is not None or digest is not None:
                return _failed("not_sealed_yet")
            return _failed("not_sealed_yet").model_copy(
                update={"number": document.number, "title": document.title}
            )
        if document.kind in SIGNED_KINDS:
            return self._verify_signed(document, sha256=sha256, digest=digest)
        found = await self._check(
            document.content, SealSignature.model_validate(document.signature)
        )
        if not found.genuine:
            return found
        if sha256 is not None and sha256.strip().lower() != document.pdf_sha256:
            return _failed("file_altered").model_copy(update={"unaltered": False})
        if digest is not None and digest.strip().lower() != document.content_digest:
            return _failed(Failure.DIGEST_MISMATCH.value)
        unaltered = True if sha256 is not None else None
        return _with_status(found.model_copy(update={"unaltered": unaltered}), document)

    async def _verify_signed_pdf(self, pdf: bytes, signed: SignedPayload) -> Verification:
        """A PDF the applicant signed: the signature from the file alone, then the register."""
        found = check_signed(
            self.verifier, number=signed.number, content_text=signed.content, record=signed.record
        )
        if not found.genuine:
            return found
        document = await self.documents.by_number(signed.number)
        if (
            document is None
            or document.kind not in SIGNED_KINDS
            or document.content_digest != signed.record.get("digest")
            or (document.signature or {}).get("signature") != signed.record.get("signature")
        ):
            return _failed("not_registered", base=found)
        # What the register recorded at signing counts, not what the file claims about it.
        registered = self._verify_signed(document, sha256=None, digest=None)
        if not registered.genuine:
            return registered
        if hashlib.sha256(pdf).hexdigest() != document.pdf_sha256:
            return _failed("file_altered", base=found).model_copy(update={"unaltered": False})
        return _with_status(registered.model_copy(update={"unaltered": True}), document)

    def _verify_signed(
        self, document: Document, *, sha256: str | None, digest: str | None
    ) -> Verification:
        """A registered document the applicant signed, checked again from the register."""
        found = check_signed(
            self.verifier,
            number=document.number,
            content_text=canonical_json(document.content).decode(),
            record=document.signature or {},
        )
        found = found.model_copy(update={"title": document.title})
        if not found.genuine:
            return found
        if sha256 is not None and sha256.strip().lower() != document.pdf_sha256:
            return _failed("file_altered").model_copy(update={"unaltered": False})
        if digest is not None and digest.strip().lower() != document.content_digest:
            return _failed(Failure.DIGEST_MISMATCH.value)
        unaltered = True if sha256 is not None else None
        return _with_status(found.model_copy(update={"unaltered": unaltered}), document)

    async def _check(self, content: dict[str, Any], signature: SealSignature) -> Verification:
        check = (await self._verifier(str(content.get("authority") or ""))).check(
            signature, digest=sm3_digest(canonical_json(content))
        )
        described = Verification(
            genuine=check.valid,
            verdict="真实有效" if check.valid else (check.reason or "核验未通过"),
            failure=check.failure.value if check.failure else None,
            reason=check.reason,
            number=content.get("number"),
            title=content.get("title"),
            application_no=content.get("application_no"),
            applicant_name=content.get("applicant_name"),
            item_name=content.get("item_name"),
            issued_on=_date(content.get("issued_on")),
            authority=check.seal.authority if check.seal else None,
            seal_id=signature.seal.seal_id,
            signed_at=signature.signed_at,
        )
        return described


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _failed(failure: str, *, base: Verification | None = None) -> Verification:
    reason = (
        VERDICTS.get(failure) or SIGNED_VERDICTS.get(failure) or FAILURE_LABELS[Failure(failure)]
    )
    fields = base.model_dump() if base else {}
    fields.update(genuine=False, verdict=reason, failure=failure, reason=reason)
    return Verification(**fields)


def _with_status(found: Verification, document: Document) -> Verification:
    still_valid = document.status == DocumentStatus.VALID.value
    verdict = "真实有效" if still_valid else "文书真实，但已被撤销，不再有效"
    return found.model_copy(
        update={"still_valid": still_valid, "status": document.status, "verdict": verdict}
    )
