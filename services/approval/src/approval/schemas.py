"""Approval's REST schemas (pydantic v2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from govshared.events import ReformMode
from pydantic import BaseModel, ConfigDict, Field


class BusinessType(StrEnum):
    """办理类型."""

    NEW = "new"  # 新办
    CHANGE = "change"  # 变更
    RENEW = "renew"  # 延续
    CANCEL = "cancel"  # 注销


class ItemOut(BaseModel):
    """An item of the catalogue with its current service guide."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    item_type: str
    authority: str
    jurisdiction: str
    is_instant: bool
    statutory_limit_days: int
    committed_limit_days: int
    version: int
    guide: dict[str, Any]


class ApplicationCreate(BaseModel):
    """An enterprise's application; the applicant's USCC comes from its token."""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(min_length=1, max_length=64, examples=["JXW-XK-001"])
    business_type: BusinessType = BusinessType.NEW
    applicant_name: str = Field(min_length=2, max_length=200, examples=["上海盐业示范有限公司"])
    form: dict[str, Any] = Field(
        default_factory=dict, description="Form data required by the item's service guide"
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
    state: str
    form: dict[str, Any]
    submitted_at: datetime
    updated_at: datetime


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
