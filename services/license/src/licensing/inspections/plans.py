"""Plans and their one draw: the seed generated at draw time, every input recorded and published,
so that anyone replays the draw (``draw.py`` is the pure function); declared conflicts (回避)."""

from __future__ import annotations

import secrets
import uuid
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from govshared.events import EventType
from govshared.jurisdictions import scope_prefix
from govshared.outbox import OutboxWriter
from govshared.sqlcopy import JSONText
from licensing import clock
from licensing.errors import (
    InspectorConflictExists,
    NotEnoughInspectors,
    PlanAlreadyDrawn,
    PlanNotDrawn,
)
from licensing.inspections import draw as drawing
from licensing.inspections import record
from licensing.inspections.draw import RISK_CLASSES, Candidate, RiskClass
from licensing.inspections.models import (
    InspectionKind,
    InspectionPlan,
    InspectionStatus,
    PlanStatus,
)
from licensing.inspections.notices import licence_event
from licensing.inspections.repository import (
    CONFLICTS,
    DRAWS,
    INSPECTIONS,
    PLANS,
    InspectionRepository,
)
from licensing.inspections.schemas import (
    ConflictCreate,
    ConflictOut,
    DrawInputs,
    DrawOut,
    PlanCreate,
    PlanOut,
    PlanRecordOut,
    ReplayOut,
)
from licensing.workdays import add_working_days


class PlanService:
    """Plans, the draw, its replay and the plan's record; conflicts of inspectors."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        default_ratios: dict[str, float],
        due_working_days: int,
    ) -> None:
        self.session = session
        self.repository = InspectionRepository(session)
        self.outbox = outbox
        self.default_ratios = default_ratios
        self.due_working_days = due_working_days

    async def create_plan(self, body: PlanCreate, *, actor: Principal) -> PlanOut:
        """A new plan; its ratios default to the settings'."""
        ratios = (
            {c.value: body.ratios[c] for c in RISK_CLASSES}
            if body.ratios
            else {c.value: float(self.default_ratios[c.value]) for c in RISK_CLASSES}
        )
        plan_id = uuid.uuid4()
        row: dict[str, Any] = {
            "id": plan_id,
            "name": body.name,
            "item_codes": sorted(set(body.item_codes)),
            "jurisdiction": body.jurisdiction,
            "period_from": body.period_from,
            "period_to": body.period_to,
            "ratios": ratios,
            "inspectors": sorted(body.inspectors),
            "due_working_days": body.due_working_days or self.due_working_days,
            "status": PlanStatus.DRAFT.value,
            "created_by": actor.subject,
            "created_at": clock.now(),
        }
        await self.repository.insert(PLANS, [row])
        payload = {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in row.items()
            if k not in ("id", "created_at", "created_by", "status")
        }
        await record.append(
            self.repository, plan_id, kind="plan_created", payload=payload, actor=actor.subject
        )
        return PlanOut.model_validate(row)

    async def plan_out(self, plan: InspectionPlan) -> PlanOut:
        """A plan with its draw."""
        out = PlanOut.model_validate(plan, from_attributes=True)
        recorded = await self.repository.draw(plan.id)
        if recorded is not None:
            out.draw = _draw_out(
                {c: getattr(recorded, c) for c in _DRAW_FIELDS},
                candidates_count=len(recorded.candidates),
            )
        return out

    async def record(self, plan: InspectionPlan) -> PlanRecordOut:
        """A plan's record, checked link by link."""
        return await record.checked(self.repository, plan.id)

    async def draw(self, plan: InspectionPlan, *, actor: Principal) -> PlanOut:
        """The plan's one draw: seed from ``secrets``, inputs and result recorded, tasks made."""
        if not await self.repository.claim_for_draw(plan.id):
            raise PlanAlreadyDrawn()
        items, prefix = plan.item_codes, scope_prefix(plan.jurisdiction)
        # [[USCC, class]] by USCC
        candidates = await self.repository.candidates(item_codes=items, jurisdiction_prefix=prefix)
        conflicts = [list(pair) for pair in await self.repository.conflicts(plan.inspectors)]
        seed = secrets.token_hex(32)
        try:
            targets = drawing.draw(
                seed_hex=seed,
                candidates=candidates,
                ratios={RiskClass(c): r for c, r in plan.ratios.items()},
                inspectors=plan.inspectors,
                conflicts=[(i, u) for i, u in conflicts],
            )
        except drawing.NotEnoughInspectors as exc:
            raise NotEnoughInspectors(
                f"与市场主体 {exc.uscc} 无利害关系的检查人员不足两名，请扩充执法检查人员名录",
                holder_uscc=exc.uscc,
            ) from exc
        inputs = _inputs(seed=seed, candidates=candidates, plan=plan, conflicts=conflicts)
        candidates_json = JSONText(drawing.canonical(candidates))
        published = drawing.targets_json(targets)
        now = clock.now()
        today = clock.today()
        due_on = add_working_days(today, plan.due_working_days)
        draw_row = {
            "plan_id": plan.id,
            "algorithm": drawing.ALGORITHM,
            "seed": seed,
            "candidates": candidates_json,
            "conflicts": conflicts,
            "targets": published,
            "inputs_sha256": drawing.inputs_digest(inputs, candidates_json=candidates_json),
            "targets_sha256": drawing.digest(published),
            "drawn_by": actor.subject,
            "drawn_at": now,
        }
        await self.repository.copy(DRAWS, [draw_row])
        licences = await self.repository.licences_of(
            [t.uscc for t in targets], item_codes=items, jurisdiction_prefix=prefix
        )
        inspections: list[dict[str, Any]] = []
        events = []
        for target in targets:
            held = licences[target.uscc]
            first = held[0]
            inspection_id = uuid.uuid4()
            inspections.append(
                {
                    "id": inspection_id,
                    "plan_id": plan.id,
                    "kind": InspectionKind.INSPECTION.value,
                    "reinspection_of": None,
                    "holder_uscc": target.uscc,
                    "holder_name": first.holder_name,
                    "licence_no": first.licence_no,
                    "licence_nos": [licence.licence_no for licence in held],
                    "item_code": first.item_code,
                    "jurisdiction": first.jurisdiction,
                    "risk_class": target.risk_class.value,
                    "inspectors": list(target.inspectors),
                    "due_on": due_on,
                    "status": InspectionStatus.OPEN.value,
                    "created_at": now,
                }
            )
            events.append(
                licence_event(
                    first,
                    EventType.LICENCE_INSPECTION_SCHEDULED,
                    reason="双随机抽查",
                    extra={"inspection_id": inspection_id, "inspection_due_on": due_on},
                )
            )
        await self.repository.copy(INSPECTIONS, inspections)
        await self.outbox.add_many(self.session, events)
        await record.append(
            self.repository,
            plan.id,
            kind="drawn",
            payload={
                "algorithm": drawing.ALGORITHM,
                "seed": seed,
                "candidates_count": len(candidates),
                "inputs_sha256": draw_row["inputs_sha256"],
                "targets_sha256": draw_row["targets_sha256"],
                "targets": len(published),
                "due_on": due_on.isoformat(),
            },
            actor=actor.subject,
        )
        plan.status = PlanStatus.DRAWN.value
        # Answered from what was written: reading the draw back would parse every candidate again.
        out = PlanOut.model_validate(plan, from_attributes=True)
        out.draw = _draw_out(draw_row, candidates_count=len(candidates))
        return out

    async def draw_inputs(self, plan: InspectionPlan) -> DrawInputs:
        """Everything the draw read, as recorded."""
        recorded = await self.repository.draw(plan.id)
        if recorded is None:
            raise PlanNotDrawn()
        inputs = _inputs(
            seed=recorded.seed,
            candidates=recorded.candidates,
            plan=plan,
            conflicts=recorded.conflicts,
        )
        return DrawInputs(
            **inputs,
            inputs_sha256=recorded.inputs_sha256,
            targets=recorded.targets,
            targets_sha256=recorded.targets_sha256,
        )

    async def replay(self, plan: InspectionPlan) -> ReplayOut:
        """Recompute the draw from its recorded inputs and compare it with the recorded one."""
        inputs = await self.draw_inputs(plan)
        replayed = drawing.targets_json(replay_draw(inputs))
        replayed_sha = drawing.digest(replayed)
        return ReplayOut(
            matches=replayed_sha == inputs.targets_sha256 and replayed == inputs.targets,
            inputs_sha256=inputs.inputs_sha256,
            recorded_targets_sha256=inputs.targets_sha256,
            replayed_targets_sha256=replayed_sha,
        )

    async def holder_jurisdictions(self, uscc: str) -> list[str]:
        """Where the holder's current licences were issued (whose staff may declare its conflicts)."""
        return await self.repository.holder_jurisdictions(uscc)

    async def declare_conflict(self, body: ConflictCreate, *, actor: Principal) -> ConflictOut:
        """Declare a conflict (回避): the inspector is never drawn for that holder."""
        if await self.repository.conflict_exists(body.inspector, body.holder_uscc):
            raise InspectorConflictExists()
        row = {
            "id": uuid.uuid4(),
            "inspector": body.inspector,
            "holder_uscc": body.holder_uscc,
            "reason": body.reason,
            "declared_by": actor.subject,
            "declared_at": clock.now(),
        }
        await self.repository.insert(CONFLICTS, [row])
        return ConflictOut.model_validate(row)


_DRAW_FIELDS = (
    "algorithm",
    "seed",
    "inputs_sha256",
    "targets_sha256",
    "targets",
    "drawn_by",
    "drawn_at",
)


def _draw_out(row: dict[str, Any], *, candidates_count: int) -> DrawOut:
    return DrawOut(candidates_count=candidates_count, **{f: row[f] for f in _DRAW_FIELDS})


def _inputs(
    *, seed: str, candidates: list[list[str]], plan: InspectionPlan, conflicts: list[list[str]]
) -> dict[str, Any]:
    return {
        "algorithm": drawing.ALGORITHM,
        "seed": seed,
        "candidates": candidates,
        "ratios": plan.ratios,
        "inspectors": plan.inspectors,
        "conflicts": conflicts,
    }


def replay_draw(inputs: DrawInputs) -> list[drawing.Target]:
    """The draw recomputed from its published inputs (what anyone can do with them)."""
    return drawing.draw(
        seed_hex=inputs.seed,
        candidates=[Candidate(u, RiskClass(c)) for u, c in inputs.candidates],
        ratios={RiskClass(c): r for c, r in inputs.ratios.items()},
        inspectors=inputs.inspectors,
        conflicts=[(i, u) for i, u in inputs.conflicts],
    )
