"""Bundles (一件事) in the catalogue, and the bundle applications that fan out to applications."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from approval.models import Base
from govshared.db import UTCDateTime


class Bundle(Base):
    """A "one thing" bundle with its version in force (mirrors the published ``bundle_versions``)."""

    __tablename__ = "bundles"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BundleVersion(Base):
    """Every version of a bundle: its items, its combined form and its shared materials."""

    __tablename__ = "bundle_versions"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # ItemVersionStatus
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    change_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BundleOutcome(StrEnum):
    """The combined result once every item is decided."""

    APPROVED = "approved"  # every item granted or filed
    PARTIALLY_APPROVED = "partially_approved"  # some granted, some refused or withdrawn
    REFUSED = "refused"  # none granted


class BundleApplication(Base):
    """One application for a bundle; its items are ordinary applications (``bundle_members``)."""

    __tablename__ = "bundle_applications"
    __table_args__ = (
        Index("ix_bundle_applications_applicant", "applicant_uscc", "submitted_at", "id"),
        Index("ix_bundle_applications_open", "decided_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    bundle_code: Mapped[str] = mapped_column(String(64))
    bundle_version: Mapped[int] = mapped_column(Integer)
    bundle_name: Mapped[str] = mapped_column(String(200))
    applicant_uscc: Mapped[str] = mapped_column(String(18))
    applicant_name: Mapped[str] = mapped_column(String(200))
    form: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set once, with the combined notice's outbox row, when every item is decided.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    outcome: Mapped[str | None] = mapped_column(String(24), default=None)


class BundleMember(Base):
    """An item of a bundle application and the ordinary application it fanned out to."""

    __tablename__ = "bundle_members"
    __table_args__ = (Index("ix_bundle_members_jurisdiction", "jurisdiction"),)

    bundle_application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bundle_applications.id", ondelete="RESTRICT"), primary_key=True
    )
    item_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    position: Mapped[int] = mapped_column(Integer)
