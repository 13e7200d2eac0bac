"""REST contracts between services: the bodies one service's typed client reads from another."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from govshared.events import ReformMode


class ReformModeAnswer(BaseModel):
    """License's answer to "how is this item handled here on this date" (DESIGN.md §3.2)."""

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
        default=None, description="Published 告知承诺 text, for commitment-mode items"
    )


class LicenceSummary(BaseModel):
    """What another service may know of an enterprise's licence (减证便民 checks)."""

    licence_no: str
    licence_type: str
    item_code: str | None
    holder_uscc: str
    status: str
    valid_from: date
    valid_until: date | None
