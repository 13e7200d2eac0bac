"""REST contracts between services: the bodies one service's typed client reads from another."""

from __future__ import annotations

import hashlib
from datetime import date

from pydantic import BaseModel, Field, computed_field

from govshared.events import ReformMode


def commitment_digest(text: str) -> str:
    """The SHA-256 (hex) of a 告知承诺 text as published: what an applicant signs."""
    return hashlib.sha256(text.encode()).hexdigest()


class ReformModeAnswer(BaseModel):
    """License's answer to "how is this item handled here on this date" (docs/architecture.md, "Reform modes")."""

    item_code: str
    item_name: str
    jurisdiction: str = Field(
        description="行政区划 code the answer applies to, e.g. 310000 or 310115"
    )
    mode: ReformMode
    mode_label: str = Field(description="Chinese name of the mode, e.g. 优化审批服务")
    effective_from: date
    version: int
    commitment_text: str | None = Field(
        default=None,
        description="Published 告知承诺 text, for commitment-mode items: the one text of this "
        "version, owned by license and served unchanged by approval's guide",
    )

    @computed_field(description="SHA-256 (hex) of commitment_text: what an applicant signs")  # type: ignore[prop-decorator]
    @property
    def commitment_text_sha256(self) -> str | None:
        """The digest of the text, computed from it on both sides (never stored apart from it)."""
        return commitment_digest(self.commitment_text) if self.commitment_text else None


class LicenceSummary(BaseModel):
    """What another service may know of an enterprise's licence (减证便民 checks)."""

    licence_no: str
    licence_type: str
    item_code: str | None
    holder_uscc: str
    status: str
    valid_from: date
    valid_until: date | None
