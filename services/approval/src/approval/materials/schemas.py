"""Materials schemas."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from govshared.uploads import display_filename


class MaterialOut(BaseModel):
    """A material of an application."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    source: str = Field(description="upload 上传, e_licence 电子证照免提交")
    filename: str | None
    content_type: str | None
    size: int | None
    sha256: str | None
    licence_no: str | None
    uploaded_at: datetime

    @field_validator("filename")
    @classmethod
    def _display_only(cls, value: str | None) -> str | None:
        # Names stored before they were sanitised on upload are sanitised on the way out.
        return display_filename(value)


class MaterialFromLicence(BaseModel):
    """Ask to satisfy a material with a valid e-licence the enterprise holds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="办事指南中的材料名称")


class ToleranceOut(BaseModel):
    """容缺受理: a required material accepted as missing, and its follow-up."""

    model_config = ConfigDict(from_attributes=True)

    application_id: uuid.UUID
    name: str
    deliver_by: date = Field(description="补交期限")
    accepted_by: str
    accepted_at: datetime
    delivered_at: datetime | None = Field(description="补交时间（未补交为空）")
    material_id: uuid.UUID | None


class ToleranceFollowUp(ToleranceOut):
    """A 容缺 material still awaited, for staff."""

    overdue: bool = Field(description="已过补交期限")


class MaterialChecklist(BaseModel):
    """The guide's materials against what the application has."""

    materials: list[MaterialOut]
    missing_required: list[str] = Field(description="尚未提交的必需材料")
    complete: bool
    tolerated: list[ToleranceOut] = Field(
        default_factory=list, description="容缺受理的材料及补交情况"
    )
