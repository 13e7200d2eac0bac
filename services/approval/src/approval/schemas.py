"""Approval's REST schemas (pydantic v2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from approval.calendar.clock import PauseReason
from govshared.applications import BusinessType
from govshared.events import ReformMode
from govshared.freeform import BoundedJson

# A material's name in a 补正 list (the guide's names run to a few dozen characters).
MaterialName = Annotated[str, Field(min_length=1, max_length=200)]


class RejectReasonCode(StrEnum):
    """不予受理的法定情形."""

    NOT_LICENSING_MATTER = "not_licensing_matter"
    OUTSIDE_JURISDICTION = "outside_jurisdiction"


class ApplicationCreate(BaseModel):
    """An enterprise's application; the applicant's USCC comes from its token."""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=64, examples=["JXW-XK-001"])
    business_type: BusinessType = BusinessType.NEW
    applicant_name: str = Field(min_length=2, max_length=200, examples=["上海盐业示范有限公司"])
    form: BoundedJson = Field(
        default_factory=dict,
        description="Form data required by the item's service guide (bounded: govshared.freeform)",
    )
    sign_commitment: bool = Field(
        default=False,
        description="实行告知承诺的事项：申请人以告知承诺方式办理（须同时附已签署的签署会话）",
    )
    commitment_signing_session: uuid.UUID | None = Field(
        default=None,
        description=(
            "已用电子印章签署告知承诺书的签署会话 (POST /api/v1/signing-sessions)；"
            "实行告知承诺的事项凭此当场作出决定"
        ),
    )
    commitment_text_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the commitment text the applicant signed (must match the published text)",
    )
    application_signing_session: uuid.UUID | None = Field(
        default=None,
        description=(
            "办事指南要求法定代表人签署的事项：已用法定代表人章签署本申请书的签署会话 "
            "(POST /api/v1/signing-sessions, purpose application)"
        ),
    )


class ApplicationOut(BaseModel):
    """An application as its applicant and the staff see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    application_no: str
    item_code: str
    item_version: int
    item_name: str
    applicant_uscc: str
    applicant_name: str
    jurisdiction: str
    business_type: BusinessType
    reform_mode: ReformMode | None
    intake_route: str = Field(description="review 审查, filing 备案, commitment 告知承诺")
    receipt_no: str | None = Field(description="备案回执编号 (filing route)")
    state: str
    form: dict[str, Any]
    submitted_at: datetime
    updated_at: datetime
    due_on: date | None = Field(
        default=None, description="最早到期的在办期限（工作台排序用；详见 /clocks）"
    )


class AuditEventOut(BaseModel):
    """One entry of the application's audit trail (办件进度)."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    action: str
    from_state: str | None
    to_state: str
    actor_role: str
    reason: str | None
    details: dict[str, Any]
    occurred_at: datetime
    hash: str


class ActionRequest(BaseModel):
    """The body of a staff or applicant action; which fields are required depends on the action."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, max_length=2000, description="理由（不予受理、不予许可、延期、撤回）"
    )
    reject_reason: RejectReasonCode | None = Field(default=None, description="不予受理的法定情形")
    signing_session: uuid.UUID | None = Field(
        default=None, description="撤回申请：申请人已签署的签署会话 (purpose withdrawal)"
    )
    missing_items: list[MaterialName] | None = Field(
        default=None, max_length=100, description="补正告知：一次性列明全部需补正的材料"
    )
    changed_materials: list[MaterialName] | None = Field(
        default=None, max_length=100, description="申请人补正时改动的材料"
    )
    form: BoundedJson | None = Field(
        default=None, description="补正时更新的表单字段（按申请时的办事指南版本校验）"
    )
    pause_reason: PauseReason | None = Field(default=None, description="第四十五条规定的情形")
    expected_days: int | None = Field(
        default=None, ge=1, le=365, description="特别程序预计所需天数"
    )
    extension_days: int | None = Field(
        default=None,
        ge=1,
        le=15,
        description="延长的工作日（至多10日；统一、联合、集中办理的事项至多15日，第四十二条）",
    )
    tolerated_materials: list[MaterialName] | None = Field(
        default=None,
        max_length=100,
        description="容缺受理：受理时尚缺的办事指南必需材料（须与缺少的材料一致）",
    )
    deliver_by: date | None = Field(default=None, description="容缺受理：申请人补交材料的期限")
    opinion: str | None = Field(default=None, max_length=4000, description="审查/审批意见")


class ChainVerification(BaseModel):
    """The result of re-hashing an application's audit trail."""

    valid: bool
    entries: int
    first_broken_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    """The result of a submission or an action: the application serialised to JSON before
    anything was written (so that nothing can fail once it is committed), or, for a retried key,
    the response stored the first time."""

    status_code: int
    body: bytes | dict[str, Any]
    replayed: bool
