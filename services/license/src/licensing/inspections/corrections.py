"""What follows a non-compliant result: 限期整改 and its re-inspection, bad-credit records, proposed
licence acts, and the missed deadline, found by a re-inspection or by the worker's timer.

A correction order is missed when its re-inspection finds it still not put right after the
deadline, or when the re-inspection's own due date (the deadline plus
``LICENSE_REINSPECTION_WORKING_DAYS``) has passed without a re-inspection finding it put right:
the order tells the holder that the authority re-inspects after the deadline, so the timer leaves
the inspectors that window rather than deciding before anyone could look. Either way the order is
marked missed by one conditional UPDATE (``settle``), so a re-inspection and the timer, or two
worker replicas, draw its consequences exactly once: a serious bad-credit record (it puts the
holder in class D of the next draw and bars 告知承诺, 国办发〔2020〕42号) and a proposed licence act.

The act is never carried out here: a proposal names the licence act endpoint (``licences/acts.py``)
where staff carry it out, because a penalty is decided by the authority after its review, its
事先告知 and any hearing (行政处罚法 Arts. 44, 57, 63, 64), and 撤销 by the authority (行政许可法
Art. 69).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from govshared.events import EventType
from govshared.outbox import OutboxWriter
from licensing import clock
from licensing.inspections import record
from licensing.inspections.models import (
    CorrectionStatus,
    Inspection,
    InspectionKind,
    InspectionStatus,
    ProposedAct,
    Severity,
)
from licensing.inspections.notices import licence_event
from licensing.inspections.repository import (
    CREDIT,
    INSPECTIONS,
    PROPOSALS,
    InspectionRepository,
)
from licensing.models import CreditKind, LicenceStatus
from licensing.workdays import add_working_days

TIMER_ACTOR = "system:inspection-timer"
ACT_PATHS = {
    # A penalty starts with its notice of rights (行政处罚法 Art. 44); the decision follows.
    ProposedAct.SUSPENSION: "penalty-notices",
    ProposedAct.PENALTY_REVOCATION: "penalty-notices",
    ProposedAct.REVOCATION: "revocation",
}
ACT_LABELS = {
    ProposedAct.SUSPENSION: "暂扣许可证件",
    ProposedAct.PENALTY_REVOCATION: "吊销许可证件",
    ProposedAct.REVOCATION: "撤销行政许可",
}
# A proposal is only worth making on a licence that is still in force.
LIVE = (LicenceStatus.VALID.value, LicenceStatus.SUSPENDED.value)
# 限期整改 follows a minor or serious finding; a grave one goes straight to a proposed act.
CORRECTED = frozenset({Severity.MINOR, Severity.SERIOUS})
# A deadline a year away is no 限期 at all (and keeps the re-inspection's date computable).
MAX_RECTIFICATION = timedelta(days=366)


def act_endpoint(licence_no: str, act: ProposedAct) -> str:
    """The licence act endpoint that carries out a proposal."""
    return f"/api/v1/licences/{licence_no}/{ACT_PATHS[act]}"


class Consequences:
    """Correction orders, credit records, proposals and missed deadlines of inspections."""

    def __init__(
        self, session: AsyncSession, *, outbox: OutboxWriter, reinspection_working_days: int
    ) -> None:
        self.session = session
        self.repository = InspectionRepository(session)
        self.outbox = outbox
        self.reinspection_working_days = reinspection_working_days

    async def order_reinspection(self, inspection: Inspection, *, rectify_by: date) -> None:
        """限期整改: a re-inspection by the same inspectors, due after the deadline."""
        await self.repository.insert(
            INSPECTIONS,
            [
                {
                    "id": uuid.uuid4(),
                    "plan_id": inspection.plan_id,
                    "kind": InspectionKind.REINSPECTION.value,
                    "reinspection_of": inspection.id,
                    "holder_uscc": inspection.holder_uscc,
                    "holder_name": inspection.holder_name,
                    "licence_no": inspection.licence_no,
                    "licence_nos": inspection.licence_nos,
                    "item_code": inspection.item_code,
                    "jurisdiction": inspection.jurisdiction,
                    "risk_class": inspection.risk_class,
                    "inspectors": inspection.inspectors,
                    "due_on": add_working_days(rectify_by, self.reinspection_working_days),
                    "status": InspectionStatus.OPEN.value,
                    "created_at": clock.now(),
                }
            ],
        )

    async def settle(self, order: Inspection, to: CorrectionStatus) -> bool:
        """Close an open correction order; False when it was closed already (by the timer or a
        concurrent re-inspection), whose consequences then are not drawn again."""
        return await self.repository.settle_correction(order.id, to=to.value)

    async def credit(
        self, inspection: Inspection, *, kind: CreditKind, serious: bool, actor: str
    ) -> None:
        """A bad-credit record; a serious one bars 告知承诺 and raises the next draw's class."""
        reason = (
            f"双随机抽查发现问题，责令限期整改逾期未改正（{inspection.findings or ''}）"
            if kind is CreditKind.RECTIFICATION_MISSED
            else f"双随机抽查发现问题：{inspection.findings or ''}"
        )
        await self.repository.insert(
            CREDIT,
            [
                {
                    "id": uuid.uuid4(),
                    "holder_uscc": inspection.holder_uscc,
                    "kind": kind.value,
                    "serious": serious,
                    "bars_commitment": serious,
                    "reason": reason,
                    "licence_no": inspection.licence_no,
                    "item_code": inspection.item_code,
                    "verification_task_id": None,
                    "inspection_id": inspection.id,
                    "recorded_by": actor,
                    "recorded_at": clock.now(),
                }
            ],
        )

    async def propose(
        self, inspection: Inspection, *, act: ProposedAct, missed: bool, actor: str
    ) -> None:
        """A licence act proposed to staff, carried out at its ``act_endpoint``."""
        reason = (
            "责令限期整改逾期未改正" if missed else "双随机抽查发现严重问题"
        ) + f"：{inspection.findings or ''}"
        await self.repository.insert(
            PROPOSALS,
            [
                {
                    "id": uuid.uuid4(),
                    "inspection_id": inspection.id,
                    "licence_no": inspection.licence_no,
                    "act": act.value,
                    "reason": reason,
                    "jurisdiction": inspection.jurisdiction,
                    "proposed_by": actor,
                    "proposed_at": clock.now(),
                }
            ],
        )

    async def missed(
        self, order: Inspection, *, found_by: Inspection, act: ProposedAct, actor: str
    ) -> ProposedAct | None:
        """A missed order's consequences (the order already settled as missed): the serious
        credit record and, on a licence still in force, the proposed act; the holder and the
        jurisdiction's staff are told. ``found_by`` is the re-inspection that found it, or the
        order itself when the timer did; the act proposed, if any."""
        await self.credit(found_by, kind=CreditKind.RECTIFICATION_MISSED, serious=True, actor=actor)
        licence = await self.licence_row(order)
        proposed = act if licence.status in LIVE else None
        if proposed is not None:
            await self.propose(found_by, act=proposed, missed=True, actor=actor)
        reason = (
            f"未在{order.rectify_by}前整改到位（{order.findings or ''}），已记入严重失信记录"
            + (f"，本机关拟依法{ACT_LABELS[proposed]}" if proposed else "")
        )
        await self.outbox.add_many(
            self.session,
            [
                licence_event(
                    licence,
                    EventType.LICENCE_RECTIFICATION_MISSED,
                    reason=reason,
                    extra={
                        "inspection_id": order.id,
                        "rectify_by": order.rectify_by,
                        "jurisdiction": order.jurisdiction,
                    },
                )
            ],
        )
        return proposed

    async def miss_overdue(self, *, today: date, limit: int) -> int:
        """The timer's pass: open orders whose re-inspection is past its due date without
        finding them put right are missed, each exactly once; how many were claimed."""
        claimed = await self.repository.claim_overdue_corrections(today=today, limit=limit)
        for order in claimed:
            if not await self.settle(order, CorrectionStatus.MISSED):
                continue
            proposed = await self.missed(
                order, found_by=order, act=ProposedAct.SUSPENSION, actor=TIMER_ACTOR
            )
            payload: dict[str, Any] = {
                "inspection_id": str(order.id),
                "holder_uscc": order.holder_uscc,
                "rectify_by": order.rectify_by.isoformat() if order.rectify_by else None,
                "correction_status": CorrectionStatus.MISSED.value,
                "proposed_act": proposed.value if proposed else None,
            }
            await record.append(
                self.repository,
                order.plan_id,
                kind="correction_missed",
                payload=payload,
                actor=TIMER_ACTOR,
            )
        return len(claimed)

    async def licence_row(self, inspection: Inspection) -> Any:
        """The inspected licence's current version (what its notice names)."""
        found = await self.repository.current_licences([inspection.licence_no])
        return found[inspection.licence_no]
