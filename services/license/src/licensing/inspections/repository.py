"""SQL of inspections. The draw's reads and writes are Core statements: it covers whole registers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    String,
    Table,
    any_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.jurisdictions import under_prefix
from govshared.sql import dialect_name
from govshared.sqlbatch import execute_insert
from govshared.sqlcopy import copy_rows
from licensing.inspections.models import (
    CorrectionStatus,
    Inspection,
    InspectionDraw,
    InspectionEvidence,
    InspectionPlan,
    InspectionProposal,
    InspectionRecord,
    InspectionStatus,
    InspectorConflict,
    Outcome,
    PlanStatus,
)
from licensing.models import CreditRecord, Licence, LicenceStatus, ReformItem


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


PLANS = _table(InspectionPlan)
DRAWS = _table(InspectionDraw)
RECORDS = _table(InspectionRecord)
CONFLICTS = _table(InspectorConflict)
INSPECTIONS = _table(Inspection)
EVIDENCE = _table(InspectionEvidence)
PROPOSALS = _table(InspectionProposal)
LICENCES = _table(Licence)
CREDIT = _table(CreditRecord)
# What an inspection task and its notices name of a licence.
_LICENCE_COLUMNS = (
    LICENCES.c.id,
    LICENCES.c.licence_no,
    LICENCES.c.licence_type,
    LICENCES.c.item_code,
    LICENCES.c.holder_name,
    LICENCES.c.holder_uscc,
    LICENCES.c.jurisdiction,
    LICENCES.c.status,
    LICENCES.c.valid_until,
    LICENCES.c.source_application_id,
)


class InspectionRepository:
    """Reads and writes plans, draws, records, inspections, evidence and proposals."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one statement."""
        if rows:
            await execute_insert(self.session, insert(table), rows)

    async def copy(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert many rows at once (COPY on PostgreSQL): a draw's tasks and notices."""
        await copy_rows(self.session, table, rows)

    async def plan(self, plan_id: uuid.UUID) -> InspectionPlan | None:
        """A plan."""
        return await self.session.get(InspectionPlan, plan_id)

    async def plans(
        self, *, jurisdiction_prefix: str | None, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[InspectionPlan]:
        """Plans in an area (their own jurisdiction under the prefix), by id."""
        query = select(InspectionPlan)
        if jurisdiction_prefix:
            query = query.where(
                under_prefix(InspectionPlan.jurisdiction, jurisdiction_prefix, autoescape=True)
            )
        if after_id is not None:
            query = query.where(InspectionPlan.id > after_id)
        return (await self.session.scalars(query.order_by(InspectionPlan.id).limit(limit))).all()

    async def claim_for_draw(self, plan_id: uuid.UUID) -> bool:
        """Mark a draft plan drawn; False when it was not a draft. One conditional UPDATE, so of
        two concurrent draws of a plan only one goes on (the other waits for it, then finds
        nothing to update), on PostgreSQL and SQLite alike."""
        result = await self.session.execute(
            update(PLANS)
            .where(PLANS.c.id == plan_id, PLANS.c.status == PlanStatus.DRAFT.value)
            .values(status=PlanStatus.DRAWN.value)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def draw(self, plan_id: uuid.UUID) -> InspectionDraw | None:
        """A plan's draw."""
        return await self.session.get(InspectionDraw, plan_id)

    def _in_plan(self, *, item_codes: Sequence[str], jurisdiction_prefix: str) -> Any:
        """Valid current licences of the items in the area (what a plan covers)."""
        return (
            LICENCES.c.is_current
            & (LICENCES.c.status == LicenceStatus.VALID.value)
            & LICENCES.c.item_code.in_(list(item_codes))
            & under_prefix(LICENCES.c.jurisdiction, jurisdiction_prefix, autoescape=True)
        )

    async def candidates(
        self, *, item_codes: Sequence[str], jurisdiction_prefix: str
    ) -> list[list[str]]:
        """``[USCC, risk class]`` of each holder of a valid current licence of the items in the
        area, by USCC: the draw's candidates, a whole register read. The class is computed in the
        database from the holder's bad-credit records by ``draw.risk_class_of``'s rule (a serious
        record D, two or more C, one B, none A; ``test_inspection_draw`` holds the two to the same
        answers). The licences come in the order of their holder index and the credit records
        are merged in (no hash of the register to build)."""
        credit = (
            select(
                CREDIT.c.holder_uscc,
                func.count().label("records"),
                func.max(case((CREDIT.c.serious, 1), else_=0)).label("serious"),
            )
            .group_by(CREDIT.c.holder_uscc)
            .subquery("credit")
        )
        risk = case(
            (credit.c.serious == 1, "D"),
            (credit.c.records >= 2, "C"),
            (credit.c.records == 1, "B"),
            else_="A",
        )
        # One string of USCC + class per licence, by holder: a row per holder through the
        # driver cost more than the rest of the draw. A USCC has no comma, a class one letter.
        entry = (LICENCES.c.holder_uscc + risk).label("entry")
        ordered = (
            select(entry)
            .select_from(LICENCES.outerjoin(credit, credit.c.holder_uscc == LICENCES.c.holder_uscc))
            .where(self._in_plan(item_codes=item_codes, jurisdiction_prefix=jurisdiction_prefix))
            .order_by(LICENCES.c.holder_uscc)
            .subquery("ordered")
        )
        aggregate = (
            func.string_agg(ordered.c.entry, literal(","))
            if dialect_name(self.session) == "postgresql"
            else func.group_concat(ordered.c.entry, ",")
        )
        joined: str | None = await self.session.scalar(select(aggregate))
        if not joined:
            return []
        # A holder of several licences comes once per licence (always with the same class).
        candidates = [[e[:-1], e[-1]] for e in dict.fromkeys(joined.split(","))]
        # The published order is by code point, whatever the database's collation or the
        # aggregate's order (sorting what is sorted already costs one pass).
        candidates.sort()
        return candidates

    async def licences_of(
        self, holders: Sequence[str], *, item_codes: Sequence[str], jurisdiction_prefix: str
    ) -> dict[str, list[Any]]:
        """The plan's licences of the drawn holders, each holder's by number."""
        found: dict[str, list[Any]] = {}
        if dialect_name(self.session) == "postgresql":
            # One array parameter: thousands of holders without a bind parameter each.
            batches = [[LICENCES.c.holder_uscc == any_(cast(list(holders), ARRAY(String)))]]
        else:
            batches = [
                [LICENCES.c.holder_uscc.in_(list(holders[start : start + 1000]))]
                for start in range(0, len(holders), 1000)
            ]
        for among in batches:
            rows = await self.session.execute(
                select(*_LICENCE_COLUMNS)
                .where(
                    *among,
                    self._in_plan(item_codes=item_codes, jurisdiction_prefix=jurisdiction_prefix),
                )
                .order_by(LICENCES.c.holder_uscc, LICENCES.c.licence_no)
            )
            for row in rows:
                found.setdefault(row.holder_uscc, []).append(row)
        return found

    async def current_licences(self, licence_nos: Sequence[str]) -> dict[str, Any]:
        """The current versions of the given licences, by number."""
        found: dict[str, Any] = {}
        for start in range(0, len(licence_nos), 1000):
            rows = await self.session.execute(
                select(*_LICENCE_COLUMNS).where(
                    LICENCES.c.licence_no.in_(list(licence_nos[start : start + 1000])),
                    LICENCES.c.is_current,
                )
            )
            found.update((row.licence_no, row) for row in rows)
        return found

    async def holder_jurisdictions(self, uscc: str) -> list[str]:
        """Where the holder's current licences were issued."""
        rows = await self.session.scalars(
            select(LICENCES.c.jurisdiction)
            .where(LICENCES.c.holder_uscc == uscc, LICENCES.c.is_current)
            .distinct()
        )
        return list(rows)

    async def conflicts(self, inspectors: Sequence[str]) -> list[tuple[str, str]]:
        """Declared conflicts of the pool's inspectors, as (inspector, USCC)."""
        rows = await self.session.execute(
            select(CONFLICTS.c.inspector, CONFLICTS.c.holder_uscc)
            .where(CONFLICTS.c.inspector.in_(list(inspectors)))
            .order_by(CONFLICTS.c.inspector, CONFLICTS.c.holder_uscc)
        )
        return [(i, u) for i, u in rows]

    async def conflict_exists(self, inspector: str, uscc: str) -> bool:
        """True when that conflict is declared already."""
        found = await self.session.scalar(
            select(CONFLICTS.c.id).where(
                CONFLICTS.c.inspector == inspector, CONFLICTS.c.holder_uscc == uscc
            )
        )
        return found is not None

    async def last_record(self, plan_id: uuid.UUID) -> tuple[int, str] | None:
        """The last entry of a plan's record: its sequence number and hash."""
        row = (
            await self.session.execute(
                select(RECORDS.c.seq, RECORDS.c.hash)
                .where(RECORDS.c.plan_id == plan_id)
                .order_by(RECORDS.c.seq.desc())
                .limit(1)
            )
        ).first()
        return (int(row[0]), str(row[1])) if row else None

    async def records(self, plan_id: uuid.UUID) -> Sequence[InspectionRecord]:
        """A plan's record in order."""
        return (
            await self.session.scalars(
                select(InspectionRecord)
                .where(InspectionRecord.plan_id == plan_id)
                .order_by(InspectionRecord.seq)
            )
        ).all()

    async def inspection(
        self, inspection_id: uuid.UUID, *, lock: bool = False
    ) -> Inspection | None:
        """One inspection (``lock``: read again and held to the end of the transaction on
        PostgreSQL, ``SELECT … FOR UPDATE``; SQLite's writer holds the whole database)."""
        return await self.session.get(
            Inspection, inspection_id, with_for_update=lock, populate_existing=lock
        )

    async def inspections(
        self,
        *,
        plan_id: uuid.UUID | None,
        jurisdiction_prefix: str | None,
        status: str | None,
        after: tuple[date, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Inspection]:
        """Inspections by due date."""
        query = select(Inspection)
        if plan_id is not None:
            query = query.where(Inspection.plan_id == plan_id)
        if jurisdiction_prefix:
            query = query.where(
                under_prefix(Inspection.jurisdiction, jurisdiction_prefix, autoescape=True)
            )
        if status is not None:
            query = query.where(Inspection.status == status)
        if after is not None:
            due_on, last_id = after
            query = query.where(
                or_(
                    Inspection.due_on > due_on,
                    (Inspection.due_on == due_on) & (Inspection.id > last_id),
                )
            )
        query = query.order_by(Inspection.due_on, Inspection.id).limit(limit)
        return (await self.session.scalars(query)).all()

    async def record_inspection(self, inspection_id: uuid.UUID, **values: Any) -> bool:
        """Write an open inspection's result; False when it was not open. One conditional
        UPDATE: of two results recorded at once (each having read the task open), only one is
        written (PostgreSQL makes the other wait for it, then finds nothing to update)."""
        result = await self.session.execute(
            update(INSPECTIONS)
            .where(
                INSPECTIONS.c.id == inspection_id,
                INSPECTIONS.c.status == InspectionStatus.OPEN.value,
            )
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def settle_correction(self, inspection_id: uuid.UUID, *, to: str) -> bool:
        """Close an open correction order; False when it was not open. One conditional UPDATE:
        of a re-inspection and the timer, or two timers, only one settles it."""
        result = await self.session.execute(
            update(INSPECTIONS)
            .where(
                INSPECTIONS.c.id == inspection_id,
                INSPECTIONS.c.correction_status == CorrectionStatus.OPEN.value,
            )
            .values(correction_status=to)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim_overdue_corrections(self, *, today: date, limit: int) -> Sequence[Inspection]:
        """Open correction orders whose re-inspection is past its due date and still open,
        locked (PostgreSQL) so that worker replicas share them."""
        reinspection = INSPECTIONS.alias("reinspection")
        overdue = (
            select(reinspection.c.id)
            .where(
                reinspection.c.reinspection_of == Inspection.id,
                reinspection.c.status == InspectionStatus.OPEN.value,
                reinspection.c.due_on < today,
            )
            .exists()
        )
        query = (
            select(Inspection)
            .where(
                Inspection.correction_status == CorrectionStatus.OPEN.value,
                Inspection.rectify_by < today,
                overdue,
            )
            .order_by(Inspection.rectify_by, Inspection.id)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Inspection)
        return (await self.session.scalars(query)).all()

    async def evidence(self, inspection_id: uuid.UUID) -> Sequence[InspectionEvidence]:
        """An inspection's evidence files."""
        return (
            await self.session.scalars(
                select(InspectionEvidence)
                .where(InspectionEvidence.inspection_id == inspection_id)
                .order_by(InspectionEvidence.uploaded_at, InspectionEvidence.id)
            )
        ).all()

    async def proposals(
        self, *, inspection_id: uuid.UUID | None = None, jurisdiction_prefix: str | None = None
    ) -> Sequence[Any]:
        """Proposed acts with the licence's current status."""
        query = select(PROPOSALS, LICENCES.c.status.label("licence_status")).join(
            LICENCES,
            (LICENCES.c.licence_no == PROPOSALS.c.licence_no) & LICENCES.c.is_current,
            isouter=True,
        )
        if inspection_id is not None:
            query = query.where(PROPOSALS.c.inspection_id == inspection_id)
        if jurisdiction_prefix:
            query = query.where(
                under_prefix(PROPOSALS.c.jurisdiction, jurisdiction_prefix, autoescape=True)
            )
        return (await self.session.execute(query.order_by(PROPOSALS.c.proposed_at))).all()

    async def published(
        self, *, item_code: str | None, after: tuple[date, uuid.UUID] | None, limit: int
    ) -> Sequence[Any]:
        """Published results, newest first, with the item's name."""
        query = (
            select(
                INSPECTIONS.c.id,
                INSPECTIONS.c.holder_name,
                INSPECTIONS.c.holder_uscc,
                INSPECTIONS.c.item_code,
                ReformItem.name.label("item_name"),
                INSPECTIONS.c.inspected_on,
                INSPECTIONS.c.outcome,
                INSPECTIONS.c.kind,
                INSPECTIONS.c.published_on,
            )
            .join(ReformItem, ReformItem.code == INSPECTIONS.c.item_code, isouter=True)
            .where(INSPECTIONS.c.published_on.is_not(None))
        )
        if item_code:
            query = query.where(INSPECTIONS.c.item_code == item_code)
        if after is not None:
            published_on, last_id = after
            query = query.where(
                or_(
                    INSPECTIONS.c.published_on < published_on,
                    (INSPECTIONS.c.published_on == published_on) & (INSPECTIONS.c.id < last_id),
                )
            )
        query = query.order_by(INSPECTIONS.c.published_on.desc(), INSPECTIONS.c.id.desc())
        return (await self.session.execute(query.limit(limit))).all()

    async def published_plans(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[Any]:
        """Drawn plans, newest draw first, with the draw's seed, digests and record entry (never
        its candidates, read for nothing but their count, which the entry holds)."""
        query = (
            select(
                PLANS.c.id,
                PLANS.c.name,
                PLANS.c.item_codes,
                PLANS.c.jurisdiction,
                PLANS.c.period_from,
                PLANS.c.period_to,
                PLANS.c.ratios,
                DRAWS.c.algorithm,
                DRAWS.c.seed,
                DRAWS.c.inputs_sha256,
                DRAWS.c.targets_sha256,
                DRAWS.c.drawn_at,
                RECORDS.c.payload,
                RECORDS.c.hash,
            )
            .join(DRAWS, DRAWS.c.plan_id == PLANS.c.id)
            .join(RECORDS, (RECORDS.c.plan_id == PLANS.c.id) & (RECORDS.c.kind == "drawn"))
        )
        if after is not None:
            drawn_at, last_id = after
            query = query.where(
                or_(
                    DRAWS.c.drawn_at < drawn_at,
                    (DRAWS.c.drawn_at == drawn_at) & (PLANS.c.id < last_id),
                )
            )
        query = query.order_by(DRAWS.c.drawn_at.desc(), PLANS.c.id.desc())
        return (await self.session.execute(query.limit(limit))).all()

    async def statistics(self, plan_id: uuid.UUID) -> Sequence[Any]:
        """Per item of a plan: drawn, inspected, compliant, corrections ordered/closed/missed,
        results published after their limit."""
        drawn = INSPECTIONS.c.kind == "inspection"
        recorded = drawn & (INSPECTIONS.c.status == "recorded")

        def count(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        return (
            await self.session.execute(
                select(
                    INSPECTIONS.c.item_code,
                    count(drawn),
                    count(recorded),
                    count(recorded & (INSPECTIONS.c.outcome == Outcome.COMPLIANT.value)),
                    count(drawn & INSPECTIONS.c.correction_status.is_not(None)),
                    count(INSPECTIONS.c.correction_status == CorrectionStatus.CLOSED_ON_TIME.value),
                    count(INSPECTIONS.c.correction_status == CorrectionStatus.MISSED.value),
                    count(INSPECTIONS.c.published_on > INSPECTIONS.c.publish_by),
                )
                .where(INSPECTIONS.c.plan_id == plan_id)
                .group_by(INSPECTIONS.c.item_code)
                .order_by(INSPECTIONS.c.item_code)
            )
        ).all()
