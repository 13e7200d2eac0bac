"""REST schemas of the licence register, verification, credit and reform status."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govshared.events import ReformMode
from govshared.freeform import BoundedJson
from licensing.certificates.schemas import CertificateOut
from licensing.models import (
    CancellationGround,
    CreditKind,
    VerificationMethod,
    VerificationStatus,
)


class LicenceTypeOut(BaseModel):
    """An entry of the licence type catalogue."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    item_code: str | None
    issuing_authority: str
    validity_months: int | None


class LicenceVersionOut(BaseModel):
    """One version of a licence, as its history lists it."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    status: str
    holder_name: str
    issued_on: date
    valid_from: date
    valid_until: date | None
    status_reason: str | None
    content_hash: str


class LicenceHistoryOut(BaseModel):
    """One entry of a licence's history."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict[str, Any] | None = Field(
        default=None, description="The act's own fields (legal basis, hearing, compensation, …)"
    )
    actor: str
    occurred_at: datetime


class LicenceOut(BaseModel):
    """An electronic licence (its current version)."""

    id: uuid.UUID
    licence_no: str
    version: int
    licence_type: str
    licence_type_name: str
    item_code: str | None
    holder_name: str
    holder_uscc: str
    issuing_authority: str
    jurisdiction: str
    issued_on: date
    valid_from: date
    valid_until: date | None
    status: str
    status_label: str
    status_reason: str | None
    granted_on_commitment: bool
    source_application_id: uuid.UUID | None
    source_application_no: str | None
    particulars: dict[str, Any]
    renewal_apply_by: date | None = Field(
        description="Art. 50: the last day to apply for renewal (30 days before expiry); "
        "there is no earliest day"
    )
    renewal_requested_on: date | None
    renewal_timely: bool | None = Field(
        description="The pending renewal was applied for by renewal_apply_by: deemed granted if "
        "undecided at expiry (Art. 50); false: late, not protected"
    )
    renewal_application_no: str | None = Field(
        description="The approval application of the pending renewal, when filed there"
    )
    act_on: date | None = Field(description="Date of the act behind the status (撤销, 暂扣, …)")
    act_basis: str | None = Field(description="Its legal basis")
    act_details: dict[str, Any] | None = Field(description="The fields the law requires of it")
    cancelled_on: date | None = Field(description="注销 (Art. 70): the day the record was closed")
    cancellation_ground: str | None
    cancellation_ground_label: str | None
    content_hash: str = Field(description="SHA-256 of the certificate's content")
    qr_url: str = Field(description="Verification URL encoded in the certificate's QR code")
    certificate: CertificateOut | None = Field(
        description="This version's sealed certificate (PDF); pending while it is being sealed"
    )


class LicenceDetail(LicenceOut):
    """A licence with its versions and history."""

    versions: list[LicenceVersionOut]
    history: list[LicenceHistoryOut]


class ReasonBody(BaseModel):
    """A decision's reason, told to the holder."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=2000)


Basis = Annotated[str, Field(min_length=4, max_length=500, description="法律依据（条款）")]
Reason = Annotated[str, Field(min_length=2, max_length=2000)]


class LicenceChange(BaseModel):
    """An authority's own change of a licence (Art. 8 变更): only with its legal basis and the
    compensation the holder is told of; any other change is the holder's application (Art. 49)."""

    model_config = ConfigDict(extra="forbid")

    holder_name: str | None = Field(
        default=None,
        min_length=2,
        max_length=200,
        description="Refused: the holder's name changes only on its application",
    )
    particulars: BoundedJson | None = Field(
        default=None, description="e.g. 生产地址、许可范围 (bounded: govshared.freeform)"
    )
    reason: Reason
    legal_basis: str | None = Field(
        default=None,
        min_length=4,
        max_length=500,
        description="Art. 8: the law amended or repealed, or the changed objective circumstances",
    )
    compensation_note: str | None = Field(
        default=None,
        min_length=2,
        max_length=2000,
        description="Art. 8: how the holder's loss is compensated (告知补偿)",
    )


class RevocationBody(BaseModel):
    """撤销 (Art. 69): the grant was unlawful (e.g. obtained by fraud or bribery)."""

    model_config = ConfigDict(extra="forbid")

    legal_basis: Basis
    reason: Reason
    compensation_note: str | None = Field(
        default=None,
        max_length=2000,
        description="Art. 69(4): compensation when the holder is not at fault",
    )


class WithdrawalBody(BaseModel):
    """撤回 (Art. 8): the law changed or the objective circumstances did; compensation is told."""

    model_config = ConfigDict(extra="forbid")

    legal_basis: Basis
    reason: Reason
    compensation_note: str = Field(min_length=2, max_length=2000)


class Hearing(StrEnum):
    """What became of the holder's right to a hearing (行政处罚法 Arts. 63, 64)."""

    HELD = "held"  # 当事人要求听证，已举行
    WAIVED = "waived"  # 当事人明确放弃听证
    NOT_REQUESTED = "not_requested"  # 告知后五日内未要求听证


# The dates of a penalty's procedure: none before the working-day calendar's first year (2000),
# none so late that a limit counted from it leaves the calendar (422 rather than a 500).
EARLIEST_PENALTY_DATE = date(2000, 1, 1)
LATEST_PENALTY_DATE = date(9999, 12, 1)


def _penalty_date(description: str) -> Any:
    return Field(
        default=None, ge=EARLIEST_PENALTY_DATE, le=LATEST_PENALTY_DATE, description=description
    )


class PenaltyBody(BaseModel):
    """吊销 or 暂扣许可证件: an administrative penalty, decided after the notice of rights served
    through ``/penalty-notices``, whose dates the decision takes from the register."""

    model_config = ConfigDict(extra="forbid")

    legal_basis: Basis
    reason: Reason
    penalty_decision_no: str = Field(min_length=4, max_length=100, description="行政处罚决定书文号")
    rights_notified_on: date | None = _penalty_date(
        "The day the 行政处罚事先告知书 was served (行政处罚法 Art. 44). Optional: taken from the "
        "notice recorded by /penalty-notices; when given it must be that notice's date"
    )
    hearing: Hearing
    hearing_held_on: date | None = _penalty_date("When the hearing was held")
    hearing_request_deadline: date | None = _penalty_date(
        "not_requested: the last day to ask for a hearing. Optional: taken from the recorded "
        "notice; when given it must be the deadline that notice stated"
    )
    suspended_until: date | None = Field(default=None, description="暂扣: the end of the term")

    @model_validator(mode="after")
    def _hearing_dates(self) -> PenaltyBody:
        if self.hearing is Hearing.HELD and self.hearing_held_on is None:
            raise ValueError("hearing_held_on is required when the hearing was held")
        return self


class IntendedPenalty(StrEnum):
    """The penalty a 行政处罚事先告知 announces."""

    PENALTY_REVOCATION = "penalty_revocation"  # 吊销许可证件
    SUSPENSION = "suspension"  # 暂扣许可证件


class PenaltyNotice(BaseModel):
    """行政处罚事先告知 (行政处罚法 Art. 44): the intended penalty, its facts and basis, and the
    holder's rights of statement, defence and hearing, served before any decision."""

    model_config = ConfigDict(extra="forbid")

    penalty: IntendedPenalty
    legal_basis: Basis
    reason: Reason = Field(description="The facts and reasons of the intended penalty")
    hearing_request_deadline: date = Field(
        ge=EARLIEST_PENALTY_DATE,
        le=LATEST_PENALTY_DATE,
        description="The last day to ask for a hearing (5 working days after the notice, "
        "行政处罚法 Arts. 64, 85)",
    )


class CancellationBody(BaseModel):
    """注销 by the authority on one of Art. 70's grounds."""

    model_config = ConfigDict(extra="forbid")

    ground: CancellationGround
    reason: Reason
    legal_basis: str | None = Field(
        default=None, min_length=4, max_length=500, description="Required for other_statutory"
    )

    @model_validator(mode="after")
    def _basis(self) -> CancellationBody:
        if self.ground is CancellationGround.HOLDER_APPLICATION:
            raise ValueError(
                "a holder's 注销 comes from its approved application (business_type cancel)"
            )
        if self.ground in (
            CancellationGround.EXPIRED,
            CancellationGround.REVOKED,
            CancellationGround.WITHDRAWN,
            CancellationGround.PENALTY_REVOKED,
        ):
            raise ValueError("this ground follows its own act (expiry, 撤销, 撤回, 吊销)")
        if self.ground is CancellationGround.OTHER_STATUTORY and not self.legal_basis:
            raise ValueError("legal_basis is required for other_statutory")
        return self


class RenewalDecision(BaseModel):
    """The authority's decision on a pending renewal."""

    model_config = ConfigDict(extra="forbid")

    grant: bool
    reason: str = Field(min_length=2, max_length=2000)


class VerificationResult(StrEnum):
    """What the public verification found."""

    VALID = "valid"  # 真实且当前有效
    NOT_VALID = "not_valid"  # 真实，但已撤销/过期/暂停/被替代
    NOT_FOUND = "not_found"  # 证照库中无此编号（或此文件未登记）
    FORGED = "forged"  # 签章、内容或文件与证照库不符


class LicenceVerification(BaseModel):
    """What anyone may learn by checking a certificate: no more than the certificate shows."""

    result: VerificationResult
    genuine: bool = Field(description="Sealed by a trusted seal and matching the register")
    valid_now: bool
    message: str = Field(description="One line for a person, in Chinese")
    failure: str | None = Field(
        default=None,
        description="not_sealed | unknown_seal | bad_signature | digest_mismatch | "
        "seal_not_valid_at_signing | number_mismatch | not_registered | not_sealed_yet | "
        "file_altered | content_hash_mismatch | register_corrupted",
    )
    reason: str | None = Field(default=None, description="Why it failed, in Chinese")
    unaltered: bool | None = Field(
        default=None, description="The file is byte for byte the one issued (SHA-256)"
    )
    licence_no: str | None = None
    version: int | None = None
    is_latest_version: bool | None = None
    latest_version: int | None = Field(
        default=None, description="The licence's current version (for a superseded one)"
    )
    licence_type_name: str | None = None
    holder_name: str | None = None
    holder_uscc: str | None = None
    issuing_authority: str | None = None
    issued_on: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    status: str | None = None
    status_label: str | None = None
    act_on: date | None = Field(default=None, description="When it was revoked, suspended, …")
    cancelled_on: date | None = Field(default=None, description="When it was 注销 (Art. 70)")
    seal_id: str | None = Field(default=None, description="印章编码 of the seal that signed it")
    seal_authority: str | None = Field(default=None, description="The trusted seal's authority")
    signed_at: datetime | None = None
    checked_on: date


class VerificationTaskOut(BaseModel):
    """A 告知承诺 verification task."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    licence_no: str
    holder_uscc: str
    holder_name: str
    item_code: str | None
    jurisdiction: str
    due_on: date
    method: VerificationMethod
    drawn: bool = Field(description="Drawn at random for an on-site check (双随机)")
    inspectors: list[str]
    status: VerificationStatus
    findings: str | None
    rectify_by: date | None = Field(description="责令限期整改: the deadline to put it right")
    rectification_findings: str | None = Field(description="The conditions found unmet")
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class VerificationOutcome(StrEnum):
    """The conclusion of a verification (国办发〔2020〕42号)."""

    PASSED = "passed"  # 承诺属实，符合条件
    CONDITIONS_UNMET = "conditions_unmet"  # 不符合条件: 责令限期整改, or after it, 撤销
    FALSE_COMMITMENT = "false_commitment"  # 虚假承诺: 撤销 and a credit record


class VerificationDecision(BaseModel):
    """The inspectors' conclusion."""

    model_config = ConfigDict(extra="forbid")

    outcome: VerificationOutcome
    findings: str = Field(min_length=2, max_length=5000)
    rectify_by: date | None = Field(
        default=None,
        description="conditions_unmet on a first check: the deadline to put them right",
    )


class CreditRecordOut(BaseModel):
    """A bad-credit record."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    holder_uscc: str
    kind: CreditKind
    serious: bool
    bars_commitment: bool
    reason: str
    licence_no: str | None
    item_code: str | None
    recorded_at: datetime


class CreditRecordCreate(BaseModel):
    """A credit record from another source (e.g. a serious dishonesty list)."""

    model_config = ConfigDict(extra="forbid")

    kind: CreditKind = CreditKind.SERIOUS_DISHONESTY
    serious: bool = True
    reason: str = Field(min_length=2, max_length=2000)


class CommitmentEligibility(BaseModel):
    """Whether an enterprise may use the 告知承诺 route (approval asks before offering it)."""

    uscc: str
    eligible: bool
    reasons: list[str] = Field(description="Why not, in Chinese; empty when eligible")
    records: list[CreditRecordOut]


class ReformStatus(StrEnum):
    """Where an enterprise stands for one reform item."""

    HELD = "held"  # 已持有有效证照
    NOT_NEEDED = "not_needed"  # 已取消审批，无需办理
    PENDING = "pending"  # 申请办理中
    FILED = "filed"  # 已备案
    OBTAINABLE_BY_FILING = "obtainable_by_filing"  # 可通过备案取得
    OBTAINABLE_BY_COMMITMENT = "obtainable_by_commitment"  # 可通过告知承诺取得
    REQUIRES_APPLICATION = "requires_application"  # 需依法申请许可


REFORM_STATUS_LABELS: dict[ReformStatus, str] = {
    ReformStatus.HELD: "已持有有效证照",
    ReformStatus.NOT_NEEDED: "已直接取消审批，凭营业执照即可经营",
    ReformStatus.PENDING: "申请办理中",
    ReformStatus.FILED: "已备案",
    ReformStatus.OBTAINABLE_BY_FILING: "可通过备案办理，即时办结",
    ReformStatus.OBTAINABLE_BY_COMMITMENT: "可选择告知承诺方式，当场作出决定",
    ReformStatus.REQUIRES_APPLICATION: "需依法申请许可（已优化审批服务）",
}


class ReformStatusEntry(BaseModel):
    """An enterprise's standing for one reform item."""

    item_code: str
    item_name: str
    mode: ReformMode
    mode_label: str
    status: ReformStatus
    status_label: str
    licence_nos: list[str]
    pending_application_no: str | None = None


class EnterpriseReformStatus(BaseModel):
    """An enterprise's standing across the reform catalogue."""

    uscc: str
    jurisdiction: str
    on: date
    commitment_eligible: bool
    items: list[ReformStatusEntry]


class EventIntake(BaseModel):
    """What the consumer did with a delivery."""

    received: int
    processed: int
    duplicates: int
    ignored: int
    invalid: int
    refused: int = Field(
        default=0,
        description=(
            "Events recorded but not applied: the register refused them as they stand (e.g. a "
            "change approved for a licence suspended meanwhile); logged for staff, not redelivered"
        ),
    )
