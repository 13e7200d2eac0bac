"""Bundles' REST schemas: the definition an admin publishes, and the combined view of a case."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from approval.catalogue.schemas import FormField
from govshared.applications import BusinessType
from govshared.freeform import JSON_BOUNDS, BoundedJson

ItemCode = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,63}$", examples=["JXW-XK-002"])]


class BundleItem(BaseModel):
    """An item of the bundle, applied for with this business type."""

    model_config = ConfigDict(extra="forbid")

    item_code: ItemCode
    business_type: BusinessType = BusinessType.NEW


class FieldTarget(BaseModel):
    """Where a field of the combined form goes: an item's own form field."""

    model_config = ConfigDict(extra="forbid")

    item_code: ItemCode
    field: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")


class BundleField(FormField):
    """A field of the one combined form, copied into each item's form it maps to."""

    maps_to: list[FieldTarget] = Field(min_length=1, max_length=20)


class MaterialTarget(BaseModel):
    """A material of an item's guide that the shared upload satisfies."""

    model_config = ConfigDict(extra="forbid")

    item_code: ItemCode
    material: str = Field(min_length=1, max_length=200)


class BundleMaterial(BaseModel):
    """A material uploaded once and shared by every item that needs it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    maps_to: list[MaterialTarget] = Field(min_length=1, max_length=20)


class BundleDefinition(BaseModel):
    """What a version of a bundle says: its items, one combined form, its shared materials."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=2, max_length=2000)
    items: list[BundleItem] = Field(min_length=2, max_length=20)
    form_fields: list[BundleField] = Field(default_factory=list, max_length=100)
    materials: list[BundleMaterial] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> BundleDefinition:
        codes = [i.item_code for i in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError("同一事项在一件事中只能出现一次")
        names = [f.name for f in self.form_fields]
        if len(set(names)) != len(names):
            raise ValueError("合并表单字段名不能重复")
        targets = [(t.item_code, t.field) for f in self.form_fields for t in f.maps_to]
        if len(set(targets)) != len(targets):
            raise ValueError("一个事项的表单字段只能由一个合并表单字段填写")
        strangers = {t[0] for t in targets} | {
            t.item_code for m in self.materials for t in m.maps_to
        }
        if strangers - set(codes):
            raise ValueError(
                f"映射到不在本件事中的事项：{'、'.join(sorted(strangers - set(codes)))}"
            )
        return self


class BundleDraft(BaseModel):
    """A bundle as an admin writes it (create or revise)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=200, examples=["开办食盐定点生产批发企业"])
    jurisdiction: str = Field(pattern=r"^\d{6}$", examples=["310000"])
    definition: Annotated[BundleDefinition, JSON_BOUNDS]
    change_note: str | None = Field(default=None, max_length=500)


class BundleCreate(BundleDraft):
    """A new bundle."""

    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,63}$", examples=["YJS-001"])


class BundleOut(BaseModel):
    """A bundle with the version in force."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    jurisdiction: str
    version: int
    definition: BundleDefinition
    updated_at: datetime


class BundleVersionOut(BaseModel):
    """One version of a bundle, with where it stands."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    version: int
    status: str
    name: str
    jurisdiction: str
    definition: BundleDefinition
    change_note: str | None
    created_at: datetime
    created_by: str | None = Field(default=None, description="起草人（仅管理员可见）")
    published_at: datetime | None


class BundleItemSubmission(BaseModel):
    """What one item of a bundle application carries beyond the combined form, exactly as a
    submission of that item alone would (``POST /api/v1/applications``): its 告知承诺 and the legal
    representative's signed application."""

    model_config = ConfigDict(extra="forbid")

    item_code: ItemCode
    sign_commitment: bool = Field(
        default=False, description="实行告知承诺的事项：以告知承诺方式办理（须附已签署的签署会话）"
    )
    commitment_signing_session: uuid.UUID | None = Field(
        default=None, description="已签署该事项告知承诺书的签署会话 (purpose commitment)"
    )
    commitment_text_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    application_signing_session: uuid.UUID | None = Field(
        default=None,
        description=(
            "办事指南要求法定代表人签署的事项：已签署该事项申请书（其表单为合并表单映射出的"
            "本事项表单）的签署会话 (purpose application)"
        ),
    )


class BundleApplicationCreate(BaseModel):
    """An enterprise's one application for a bundle; the applicant's USCC comes from its token."""

    model_config = ConfigDict(extra="forbid")

    bundle_code: str = Field(min_length=1, max_length=64, examples=["YJS-SH-001"])
    applicant_name: str = Field(min_length=2, max_length=200, examples=["上海盐业示范有限公司"])
    form: BoundedJson = Field(
        default_factory=dict, description="The bundle's combined form (its ``form_fields``)"
    )
    items: list[BundleItemSubmission] = Field(
        default_factory=list,
        max_length=20,
        description="按事项附上的告知承诺与法定代表人签署（仅需要的事项）",
    )

    @model_validator(mode="after")
    def _one_entry_per_item(self) -> BundleApplicationCreate:
        codes = [i.item_code for i in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError("同一事项只能附一组承诺与签署")
        return self


class MemberOut(BaseModel):
    """One item of a bundle application: its own application, state and (if refused) why."""

    item_code: str
    item_name: str
    application_id: uuid.UUID
    application_no: str
    jurisdiction: str
    state: str
    state_label: str
    decided: bool
    due_on: date | None = None
    reason: str | None = Field(default=None, description="不予许可、不予受理或撤回的理由")


class BundleProgress(BaseModel):
    """How far the items are: decided out of total."""

    decided: int
    total: int


class BundleApplicationOut(BaseModel):
    """One combined progress and one combined result for the applicant."""

    id: uuid.UUID
    bundle_code: str
    bundle_version: int
    bundle_name: str
    applicant_uscc: str
    applicant_name: str
    submitted_at: datetime
    status: str = Field(description="in_progress | decided")
    outcome: str | None = Field(
        default=None, description="approved | partially_approved | refused (once decided)"
    )
    summary: str = Field(description="给申请人的一句话结果（中文）")
    progress: BundleProgress
    items: list[MemberOut]


class BundleMaterialOut(BaseModel):
    """A shared upload: one blob, recorded as a material of each item that needs it."""

    name: str
    sha256: str
    size: int
    content_type: str
    materials: list[dict[str, str]] = Field(
        description="每个事项的材料记录：item_code, application_id, material, material_id"
    )
