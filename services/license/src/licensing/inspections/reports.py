"""一公开 and statistics: the published results (individuals' names masked), the drawn plans with
their seeds, and a plan's figures."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from licensing.inspections.models import OUTCOME_LABELS, InspectionKind, InspectionPlan, Outcome
from licensing.inspections.repository import InspectionRepository
from licensing.inspections.schemas import (
    ItemStatistics,
    PlanStatistics,
    PublicPlan,
    PublicResult,
)
from licensing.publicity import public_name

_FIELDS = (
    "drawn",
    "inspected",
    "compliant",
    "corrections_ordered",
    "corrections_closed_on_time",
    "corrections_missed",
    "published_late",
)


class ReportService:
    """What is published of inspections, and what they add up to."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = InspectionRepository(session)

    async def public_results(
        self, *, item_code: str | None, after: tuple[date, uuid.UUID] | None, limit: int
    ) -> list[tuple[uuid.UUID, PublicResult]]:
        """Published results, newest first, individuals' names masked."""
        rows = await self.repository.published(item_code=item_code, after=after, limit=limit)
        return [
            (
                r.id,
                PublicResult(
                    holder_name=public_name(r.holder_name, r.holder_uscc),
                    holder_uscc=r.holder_uscc,
                    item_code=r.item_code,
                    item_name=r.item_name,
                    inspected_on=r.inspected_on,
                    outcome=Outcome(r.outcome),
                    outcome_label=OUTCOME_LABELS[Outcome(r.outcome)],
                    kind=InspectionKind(r.kind),
                    published_on=r.published_on,
                ),
            )
            for r in rows
        ]

    async def public_plans(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[PublicPlan]:
        """Drawn plans with their seeds and digests, newest draw first."""
        rows = await self.repository.published_plans(after=after, limit=limit)
        return [
            PublicPlan(
                id=r.id,
                name=r.name,
                item_codes=r.item_codes,
                jurisdiction=r.jurisdiction,
                period_from=r.period_from,
                period_to=r.period_to,
                ratios=r.ratios,
                algorithm=r.algorithm,
                seed=r.seed,
                candidates_count=r.payload["candidates_count"],
                targets_count=r.payload["targets"],
                inputs_sha256=r.inputs_sha256,
                targets_sha256=r.targets_sha256,
                drawn_at=r.drawn_at,
                record_hash=r.hash,
            )
            for r in rows
        ]

    async def statistics(self, plan: InspectionPlan) -> PlanStatistics:
        """Drawn, inspected, compliant share and corrections per item and in total."""
        items = [
            _figures(str(row[0]), *(int(v or 0) for v in row[1:]))
            for row in await self.repository.statistics(plan.id)
        ]
        total = _figures("*", *(sum(getattr(i, f) for i in items) for f in _FIELDS))
        return PlanStatistics(plan_id=plan.id, total=total, items=items)


def _figures(code: str, *values: int) -> ItemStatistics:
    figures = dict(zip(_FIELDS, values, strict=True))
    inspected = figures["inspected"]
    return ItemStatistics(
        item_code=code,
        compliant_share=round(figures["compliant"] / inspected, 4) if inspected else None,
        **figures,
    )
