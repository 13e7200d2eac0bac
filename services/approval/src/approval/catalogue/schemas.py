"""The service guide (办事指南) as a typed document, and the catalogue's REST schemas."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from approval.tasks.chain import ReviewChain
from govshared.events import ReformMode
from govshared.freeform import JSON_BOUNDS


class LegalBasis(BaseModel):
    """A law and the articles the item rests on."""

    law: str = Field(min_length=2, max_length=200, examples=["《食盐专营办法》"])
    articles: str = Field(min_length=1, max_length=200, examples=["第八条、第九条"])


class Delegation(BaseModel):
    """A delegation of the power to decide (e.g. to 浦东新区)."""

    model_config = ConfigDict(populate_by_name=True)

    from_authority: str = Field(alias="from", min_length=2, max_length=200)
    to_authority: str = Field(alias="to", min_length=2, max_length=200)
    effective_from: date
    basis: str | None = Field(default=None, max_length=500)


class MaterialSpec(BaseModel):
    """A required material."""

    name: str = Field(min_length=1, max_length=200)
    source: str = Field(default="申请人自备", max_length=100)
    form: str = Field(default="复印件", description="原件 or 复印件")
    electronic: bool = True
    required: bool = True
    commitment_allowed: bool = Field(default=False, description="可用告知承诺替代")
    replaced_by_licence_type: str | None = Field(
        default=None,
        description="Licence type that, held as a valid e-licence, satisfies it (减证便民)",
    )


# 行政许可法第四十五条: the only procedures whose time is not counted in the limits of its chapter
# (the values of approval.calendar.clock.PauseReason, spelled here so the catalogue stands alone).
ART45_REASONS: dict[str, str] = {
    "hearing": "听证",
    "tendering": "招标",
    "auction": "拍卖",
    "inspection": "检验",
    "testing": "检测",
    "quarantine": "检疫",
    "appraisal": "鉴定",
    "expert_review": "专家评审",
}
# 第三十四条第三款: verifying the substance of the materials (核查) is part of the review itself.
VERIFICATION_WORDS = ("核查", "核实")


class SpecialStep(BaseModel):
    """A special step of the procedure and whether its time counts against the limit.

    Not counted (``counted: false``) only for an Art. 45 procedure named in ``reason`` (hearing,
    tendering, auction, inspection, testing, quarantine, appraisal, expert review), or where
    ``statute`` cites another law or regulation that says so; on-site verification (现场核查,
    Art. 34(3)) is part of the review and always counts.
    """

    name: str
    counted: bool = False
    reason: str
    statute: str | None = Field(
        default=None,
        max_length=200,
        description="另有规定的法律、法规及条款（第四十五条所列情形以外不计时的依据）",
    )

    def problem(self) -> str | None:
        """Why the law does not allow this step's time to be left out; None when it does."""
        if self.counted or self.statute:
            return None
        if any(word in self.name for word in VERIFICATION_WORDS):
            return (
                f"「{self.name}」属于对申请材料实质内容的核查，是审查的组成部分"
                "（行政许可法第三十四条第三款），所需时间计入审批期限"
            )
        if self.reason not in ART45_REASONS:
            listed = "、".join(f"{k}（{v}）" for k, v in ART45_REASONS.items())
            return (
                f"「{self.name}」不属于行政许可法第四十五条所列不计入期限的情形（{listed}），"
                "且未注明另有规定的法律、法规（statute）"
            )
        return None


class JointHandling(StrEnum):
    """行政许可法第四十二条第二款: an item handled by several authorities together."""

    UNIFIED = "unified"  # 统一办理
    JOINT = "joint"  # 联合办理
    CENTRALISED = "centralised"  # 集中办理


JOINT_HANDLING_LABELS = {
    JointHandling.UNIFIED: "统一办理",
    JointHandling.JOINT: "联合办理",
    JointHandling.CENTRALISED: "集中办理",
}
JOINT_LIMIT_DAYS = 45  # Art. 42(2): 办理的时间不得超过四十五日
JOINT_EXTENSION_DAYS = 15  # Art. 42(2): 经本级人民政府负责人批准，可以延长十五日


class RequiredSignature(StrEnum):
    """Who must sign an application with a reliable electronic signature (电子签名法 第十四条)."""

    # The enterprise's 法定代表人章: the applicant answers for the truth of what it submits
    # (行政许可法 第三十一条), and some items ask that the legal representative sign for it.
    LEGAL_REPRESENTATIVE = "legal_representative"


# The seal kind (certificate ``title``, govshared.signing.SealKind) each requirement accepts.
REQUIRED_SEAL_KINDS = {RequiredSignature.LEGAL_REPRESENTATIVE: "法定代表人章"}


class FieldType(StrEnum):
    """Types of form fields."""

    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"


class FormField(BaseModel):
    """A field of the application form."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    label: str = Field(min_length=1, max_length=100)
    type: FieldType = FieldType.STRING
    required: bool = True
    max_length: int | None = Field(default=None, ge=1, le=10000)
    particular: bool = Field(
        default=False,
        description="许可事项: the approved value is written on the licence (its particulars, "
        "under the label), and an approved 变更 changes it there",
    )


class ServiceGuide(BaseModel):
    """Every element of a service guide (docs/architecture.md, "Items")."""

    legal_basis: list[LegalBasis] = Field(min_length=1)
    implementing_authority: str
    deciding_authority: str
    delegation: Delegation | None = None
    eligible_applicants: str
    conditions: dict[str, str] = Field(
        description="Conditions per business type (new/change/renew/cancel)"
    )
    refusal_grounds: list[str] = Field(default_factory=list)
    materials: list[MaterialSpec] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)
    special_steps: list[SpecialStep] = Field(default_factory=list)
    fees: str = "不收费"
    result_type: str
    result_validity: str | None = None
    visits: int = Field(default=0, ge=0, le=10, description="最多跑动次数")
    contacts: dict[str, str] = Field(default_factory=dict)
    supervision: list[str] = Field(default_factory=list, description="事中事后监管措施")
    effective_from: date
    form_fields: list[FormField] = Field(default_factory=list)
    commitment_text: str | None = Field(
        default=None,
        description="告知承诺书文本：由证照服务的改革事项目录（license）按事项、区划、生效日期统一"
        "发布，本指南原样转载（GET /api/v1/items/{code}）；办事指南不另行维护，写入时须为空",
    )
    joint_handling: JointHandling | None = Field(
        default=None,
        description="依法统一办理（unified）、联合办理（joint）或集中办理（centralised）"
        "（第四十二条第二款：办理时限不超过45日，经本级人民政府负责人批准可延长15日）",
    )
    required_signature: RequiredSignature | None = Field(
        default=None,
        description="legal_representative：申请须由法定代表人以电子印章（法定代表人章）在手机上签署"
        "（POST /api/v1/signing-sessions，purpose application），提交时附已签署的签署会话",
    )
    review_chain: ReviewChain | None = Field(
        default=None,
        description="内部审查环节（受理→初审→复审→审批等，各环节的办理角色及部门）和并联审批征求意见"
        "的部门、答复期限及逾期未答复的处理规则（docs/review-chains.md）；未声明的按受理、审查、决定办理",
    )


class ItemDraft(BaseModel):
    """An item's data as an admin writes it (create or revise)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=200)
    item_type: str = Field(min_length=2, max_length=32, examples=["行政许可", "行政备案"])
    authority: str = Field(min_length=2, max_length=200)
    jurisdiction: str = Field(pattern=r"^\d{6}$", examples=["310000", "310115"])
    is_instant: bool = False
    statutory_limit_days: int = Field(ge=0, le=365)
    committed_limit_days: int = Field(ge=0, le=365)
    reform_mode: ReformMode | None = None
    # Served on every catalogue page and copied into each version: bounded like free-form data.
    guide: Annotated[ServiceGuide, JSON_BOUNDS]
    change_note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _lawful_limits(self) -> ItemDraft:
        """Refuse a guide the Administrative Licensing Law does not allow (Arts. 34, 42, 45)."""
        problems = [p for step in self.guide.special_steps if (p := step.problem())]
        if self.guide.joint_handling is not None and self.statutory_limit_days > JOINT_LIMIT_DAYS:
            problems.append(
                f"统一办理、联合办理、集中办理的时限不得超过{JOINT_LIMIT_DAYS}日（第四十二条第二款）"
            )
        chain = self.guide.review_chain
        if chain is not None and chain.consultations and self.guide.joint_handling is None:
            problems.append(
                "征求其他部门意见（并联审批）的事项属联合办理，须注明 joint_handling（第四十二条第二款）"
            )
        if chain is not None and self.is_instant:
            problems.append("即办件当场作出决定，不设审查环节（review_chain 须为空）")
        if problems:
            raise ValueError("；".join(problems))
        return self

    @field_validator("guide")
    @classmethod
    def _commitment_text_is_license_s(cls, guide: ServiceGuide) -> ServiceGuide:
        # One text per item version, owned by license's reform catalogue: a second copy here is
        # how the two services came to publish different texts.
        if guide.commitment_text is not None:
            raise ValueError(
                "告知承诺书文本由证照服务的改革事项目录统一发布，办事指南不另行维护（commitment_text 须为空）"
            )
        return guide

    @field_validator("guide")
    @classmethod
    def _particulars_named_once(cls, guide: ServiceGuide) -> ServiceGuide:
        # A particular's label is its name on the licence (approval.forms.licence_particulars):
        # two fields under one label would overwrite each other there.
        labels = [f.label for f in guide.form_fields if f.particular]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"许可事项字段（particular）的名称须各不相同：{'、'.join(twice)}")
        return guide


class ItemCreate(ItemDraft):
    """A new item."""

    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,63}$", examples=["JXW-XK-014"])


class ItemOut(BaseModel):
    """An item with the service guide in force."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    item_type: str
    authority: str
    jurisdiction: str
    is_instant: bool
    statutory_limit_days: int
    committed_limit_days: int
    reform_mode: ReformMode | None
    version: int
    guide: ServiceGuide
    commitment_text_sha256: str | None = Field(
        default=None,
        description="guide.commitment_text 的 SHA-256（十六进制）：以告知承诺方式申请时签署并提交此值",
    )
    commitment_version: int | None = Field(
        default=None, description="承诺书所属的改革事项版本（证照服务 /reform-items/{code}/mode）"
    )


class ItemVersionOut(BaseModel):
    """One version of an item's guide, with where it stands."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    version: int
    status: str
    name: str
    item_type: str
    authority: str
    jurisdiction: str
    is_instant: bool
    statutory_limit_days: int
    committed_limit_days: int
    reform_mode: ReformMode | None
    guide: ServiceGuide
    change_note: str | None
    created_at: datetime
    published_at: datetime | None


class ItemVersionSummary(BaseModel):
    """A line of an item's change history."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    status: str
    change_note: str | None
    created_at: datetime
    created_by: str | None = Field(default=None, description="起草人（仅管理员可见）")
    published_at: datetime | None


class ModeCount(BaseModel):
    """Items of one reform mode."""

    mode: ReformMode | None
    label: str
    items: int


class CatalogueStatistics(BaseModel):
    """Figures computed from the catalogue in force, never stored."""

    items: int
    by_reform_mode: list[ModeCount]
    instant_items: int
    instant_share: float = Field(description="即办件占比")
    reduced_limit_items: int
    reduced_limit_share: float = Field(description="承诺时限少于法定时限的事项占比")
