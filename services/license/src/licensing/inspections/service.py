"""双随机、一公开: plans, the reproducible draw, inspections, their publication and consequences.

Consequences of a non-compliant result follow its severity: a minor finding is ordered put right
by a deadline (限期整改) and re-inspected after it; a serious one also gets a bad-credit record; a
grave one gets a serious bad-credit record (which bars 告知承诺, 国办发〔2020〕42号) and a proposed
licence act. A re-inspection after the deadline that still finds it not put right is a missed
correction: a serious bad-credit record and a proposed act. The act itself (暂扣, 吊销 after the
notice of rights, 撤销) is carried out by staff through the licence act endpoints, never here:
a penalty needs its 事先告知 and hearing (行政处罚法 Arts. 44, 63, 64).

Credit records change the holder's risk class in the next draw (``draw.risk_class_of``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from govshared.events import EventType, LicenceEventData, make_event
from govshared.hashchain import GENESIS, chain_intact, entry_hash
from govshared.jurisdictions import scope_prefix
from govshared.outbox import OutboxWriter
from govshared.problems import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from govshared.storage import Storage, sniff_content_type
from licensing import clock
from licensing.errors import (
    EvidenceRequired,
    InspectionAlreadyRecorded,
    InspectorConflictExists,
    NotEnoughInspectors,
    PlanAlreadyDrawn,
    PlanNotDrawn,
    RectificationDeadlineInvalid,
    RectificationPeriodRunning,
)
from licensing.inspections import draw as drawing
from licensing.inspections.draw import RISK_CLASSES, Candidate, RiskClass
from licensing.inspections.models import (
    OUTCOME_LABELS,
    CorrectionStatus,
    Inspection,
    InspectionKind,
    InspectionPlan,
    InspectionStatus,
    Outcome,
    PlanStatus,
    ProposedAct,
    Severity,
)
from licensing.inspections.repository import (
    CONFLICTS,
    CREDIT,
    DRAWS,
    EVIDENCE,
    INSPECTIONS,
    PLANS,
    PROPOSALS,
    RECORDS,
    InspectionRepository,
)
from licensing.inspections.schemas import (
    ConflictCreate,
    ConflictOut,
    DrawInputs,
    DrawOut,
    EvidenceOut,
    InspectionDetail,
    InspectionOut,
    ItemStatistics,
    PlanCreate,
    PlanOut,
    PlanRecordOut,
    PlanStatistics,
    ProposalOut,
    PublicResult,
    RecordEntryOut,
    ReplayOut,
    ResultCreate,
)
from licensing.models import CreditKind
from licensing.workdays import add_working_days

SOURCE = "/services/license"
CHUNK = 64 * 1024
ACCEPTED_EVIDENCE = ["application/pdf", "application/ofd", "image/png", "image/jpeg"]
# 登记管理部门代码 9 (市场监管) with 机构类别代码 2: 个体工商户 (GB 32100-2015 and its annex).
INDIVIDUAL_BUSINESS_PREFIX = "92"
ACT_PATHS = {
    # A penalty starts with its notice of rights (行政处罚法 Art. 44); the decision follows.
    ProposedAct.SUSPENSION: "penalty-notices",
    ProposedAct.PENALTY_REVOCATION: "penalty-notices",
    ProposedAct.REVOCATION: "revocation",
}
CORRECTED = {Severity.MINOR, Severity.SERIOUS}
# A deadline a year away is no 限期 at all (and keeps the re-inspection's date computable).
MAX_RECTIFICATION = timedelta(days=366)


def public_name(name: str, uscc: str) -> str:
    """The holder's name as published: a 个体工商户's (USCC ``92…``) is often its owner's own
    name, personal information (个人信息保护法 Art. 4), so only its first character is shown."""
    if uscc.startswith(INDIVIDUAL_BUSINESS_PREFIX):
        return name[:1] + "*" * max(len(name) - 1, 2)
    return name


def act_endpoint(licence_no: str, act: ProposedAct) -> str:
    """The licence act endpoint that carries out a proposal."""
    return f"/api/v1/licences/{licence_no}/{ACT_PATHS[act]}"


class InspectionService:
    """Plans, the draw, inspections, results and what follows from them."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        storage: Storage,
        default_ratios: dict[str, float],
        due_working_days: int,
        publication_working_days: int,
        reinspection_working_days: int,
        max_upload_bytes: int,
    ) -> None:
        self.session = session
        self.repository = InspectionRepository(session)
        self.outbox = outbox
        self.storage = storage
        self.default_ratios = default_ratios
        self.due_working_days = due_working_days
        self.publication_working_days = publication_working_days
        self.reinspection_working_days = reinspection_working_days
        self.max_upload_bytes = max_upload_bytes

    # --- the hash-chained record ----------------------------------------------------------

    async def _record(
        self, plan_id: uuid.UUID, *, kind: str, payload: dict[str, Any], actor: str
    ) -> None:
        last = await self.repository.last_record(plan_id)
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        entry = {
            "plan_id": str(plan_id),
            "seq": seq,
            "kind": kind,
            "payload": payload,
            "actor": actor,
            "recorded_at": clock.now(),
        }
        row = {**entry, "id": uuid.uuid4(), "plan_id": plan_id, "prev_hash": prev}
        row["hash"] = entry_hash(prev, entry)
        await self.repository.insert(RECORDS, [row])

    async def record(self, plan: InspectionPlan) -> PlanRecordOut:
        """A plan's record, checked link by link."""
        entries = await self.repository.records(plan.id)
        intact = chain_intact(
            (
                e.prev_hash,
                e.hash,
                {
                    "plan_id": str(e.plan_id),
                    "seq": e.seq,
                    "kind": e.kind,
                    "payload": e.payload,
                    "actor": e.actor,
                    "recorded_at": e.recorded_at,
                },
            )
            for e in entries
        )
        return PlanRecordOut(
            intact=intact, entries=[RecordEntryOut.model_validate(e) for e in entries]
        )

    # --- plans and the draw ---------------------------------------------------------------

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
        await self._record(plan_id, kind="plan_created", payload=payload, actor=actor.subject)
        return PlanOut.model_validate(row)

    async def plan_out(self, plan: InspectionPlan) -> PlanOut:
        """A plan with its draw."""
        out = PlanOut.model_validate(plan, from_attributes=True)
        recorded = await self.repository.draw(plan.id)
        if recorded is not None:
            out.draw = DrawOut(
                algorithm=recorded.algorithm,
                seed=recorded.seed,
                candidates_count=len(recorded.candidates),
                inputs_sha256=recorded.inputs_sha256,
                targets_sha256=recorded.targets_sha256,
                targets=recorded.targets,
                drawn_by=recorded.drawn_by,
                drawn_at=recorded.drawn_at,
            )
        return out

    @staticmethod
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

    async def draw(self, plan: InspectionPlan, *, actor: Principal) -> PlanOut:
        """The plan's one draw: seed from ``secrets``, inputs and result recorded, tasks made."""
        if not await self.repository.claim_for_draw(plan.id):
            raise PlanAlreadyDrawn()
        rows = await self.repository.candidates(
            item_codes=plan.item_codes, jurisdiction_prefix=scope_prefix(plan.jurisdiction)
        )
        credit = await self.repository.credit_profile()
        licences: dict[str, list[str]] = {}
        for holder_uscc, licence_no in rows:
            licences.setdefault(holder_uscc, []).append(licence_no)
        unrecorded = drawing.RiskClass.A
        classes = {
            uscc: drawing.risk_class_of(records=credit[uscc][0], serious=credit[uscc][1])
            if uscc in credit
            else unrecorded
            for uscc in licences
        }
        candidates = [[uscc, risk.value] for uscc, risk in classes.items()]  # sorted by the query
        conflicts = [list(pair) for pair in await self.repository.conflicts(plan.inspectors)]
        seed = secrets.token_hex(32)
        try:
            targets = drawing.draw(
                seed_hex=seed,
                candidates=[Candidate(u, risk) for u, risk in classes.items()],
                ratios={RiskClass(c): r for c, r in plan.ratios.items()},
                inspectors=plan.inspectors,
                conflicts=[(i, u) for i, u in conflicts],
            )
        except drawing.NotEnoughInspectors as exc:
            raise NotEnoughInspectors(
                f"与市场主体 {exc.uscc} 无利害关系的检查人员不足两名，请扩充执法检查人员名录",
                holder_uscc=exc.uscc,
            ) from exc
        inputs = self._inputs(seed=seed, candidates=candidates, plan=plan, conflicts=conflicts)
        published = drawing.targets_json(targets)
        now = clock.now()
        today = clock.today()
        due_on = add_working_days(today, plan.due_working_days)
        draw_row = {
            "plan_id": plan.id,
            "algorithm": drawing.ALGORITHM,
            "seed": seed,
            "candidates": candidates,
            "conflicts": conflicts,
            "targets": published,
            "inputs_sha256": drawing.digest(inputs),
            "targets_sha256": drawing.digest(published),
            "drawn_by": actor.subject,
            "drawn_at": now,
        }
        await self.repository.insert(DRAWS, [draw_row])
        details = await self.repository.current_licences([licences[t.uscc][0] for t in targets])
        inspections: list[dict[str, Any]] = []
        events = []
        for target in targets:
            held = licences[target.uscc]
            first = details[held[0]]
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
                    "licence_nos": held,
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
                self._event(
                    first,
                    EventType.LICENCE_INSPECTION_SCHEDULED,
                    reason="双随机抽查",
                    extra={"inspection_id": inspection_id, "inspection_due_on": due_on},
                )
            )
        await self.repository.insert(INSPECTIONS, inspections)
        await self.outbox.add_many(self.session, events)
        await self._record(
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
        return await self.plan_out(plan)

    async def draw_inputs(self, plan: InspectionPlan) -> DrawInputs:
        """Everything the draw read, as recorded."""
        recorded = await self.repository.draw(plan.id)
        if recorded is None:
            raise PlanNotDrawn()
        inputs = self._inputs(
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

    # --- conflicts ----------------------------------------------------------------------

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

    # --- inspections --------------------------------------------------------------------

    async def inspections(
        self,
        *,
        plan_id: uuid.UUID | None,
        jurisdiction_prefix: str | None,
        status: InspectionStatus | None,
        after: tuple[date, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Inspection]:
        """Inspections by due date."""
        return await self.repository.inspections(
            plan_id=plan_id,
            jurisdiction_prefix=jurisdiction_prefix,
            status=status.value if status else None,
            after=after,
            limit=limit,
        )

    async def detail(self, inspection: Inspection) -> InspectionDetail:
        """An inspection with its evidence and proposals."""
        base = InspectionOut.model_validate(inspection)
        return InspectionDetail(
            **base.model_dump(),
            evidence=[
                EvidenceOut.model_validate(e) for e in await self.repository.evidence(inspection.id)
            ],
            proposals=[
                self._proposal_out(r)
                for r in await self.repository.proposals(inspection_id=inspection.id)
            ],
        )

    @staticmethod
    def _proposal_out(row: Any) -> ProposalOut:
        act = ProposedAct(row.act)
        return ProposalOut(
            id=row.id,
            inspection_id=row.inspection_id,
            licence_no=row.licence_no,
            act=act,
            reason=row.reason,
            proposed_by=row.proposed_by,
            proposed_at=row.proposed_at,
            act_endpoint=act_endpoint(row.licence_no, act),
            licence_status=row.licence_status,
        )

    async def proposals(self, *, jurisdiction_prefix: str | None) -> list[ProposalOut]:
        """Proposed licence acts in the caller's area, with each licence's status now."""
        rows = await self.repository.proposals(jurisdiction_prefix=jurisdiction_prefix)
        return [self._proposal_out(r) for r in rows]

    async def add_evidence(
        self, inspection: Inspection, *, file: UploadFile, actor: Principal
    ) -> EvidenceOut:
        """Store an evidence file checked by its content (PDF, OFD, PNG, JPEG)."""
        if inspection.status != InspectionStatus.OPEN.value:
            raise InspectionAlreadyRecorded()
        limit = self.max_upload_bytes
        if file.size is not None and file.size > limit:
            raise PayloadTooLarge(f"文件超过 {limit // (1024 * 1024)} MB 上限")
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"文件超过 {limit // (1024 * 1024)} MB 上限")
        real = sniff_content_type(data[:512])
        if real is None:
            raise UnsupportedMediaType(
                "仅接受 PDF、OFD、PNG、JPEG 文件", accepted=ACCEPTED_EVIDENCE
            )
        declared = (file.content_type or "").split(";")[0].strip().lower()
        if declared not in ("", "application/octet-stream", real):
            raise UnsupportedMediaType(
                f"文件内容为 {real}，与声明的类型 {declared} 不符", detected=real, declared=declared
            )
        evidence_id = uuid.uuid4()
        key = f"inspections/{inspection.id}/{evidence_id}"
        await self.storage.put(key, data, content_type=real)
        row = {
            "id": evidence_id,
            "inspection_id": inspection.id,
            "filename": (file.filename or "")[:255] or None,
            "content_type": real,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "storage_key": key,
            "uploaded_by": actor.subject,
            "uploaded_at": clock.now(),
        }
        await self.repository.insert(EVIDENCE, [row])
        return EvidenceOut.model_validate(row)

    async def record_result(
        self, inspection: Inspection, body: ResultCreate, *, actor: Principal
    ) -> InspectionDetail:
        """Record a result with its evidence, publish it, notify the holder, and act on it."""
        if inspection.status != InspectionStatus.OPEN.value:
            raise InspectionAlreadyRecorded()
        today = clock.today()
        if body.inspected_on > today:
            raise ValidationFailed("检查日期不得晚于今天")
        if body.inspected_on < inspection.created_at.astimezone(clock.CHINA).date():
            raise ValidationFailed("检查日期不得早于抽查任务的生成日期")
        evidence = await self.repository.evidence(inspection.id)
        if not evidence:
            raise EvidenceRequired()
        original = (
            await self.repository.inspection(inspection.reinspection_of)
            if inspection.reinspection_of
            else None
        )
        severity = body.severity
        missed = False
        if original is not None and original.rectify_by is not None:
            if body.outcome is Outcome.NON_COMPLIANT and body.inspected_on <= original.rectify_by:
                raise RectificationPeriodRunning(
                    f"整改期限至{original.rectify_by.isoformat()}届满，届满前不能认定逾期未改正"
                )
            missed = body.outcome is not Outcome.COMPLIANT
        rectify_by = None
        if body.outcome is Outcome.NON_COMPLIANT and not missed and severity in CORRECTED:
            if body.rectify_by is None or body.rectify_by <= today:
                raise RectificationDeadlineInvalid("限期整改应当给出今天以后的整改期限")
            if body.rectify_by > today + MAX_RECTIFICATION:
                raise RectificationDeadlineInvalid("整改期限不得超过一年")
            rectify_by = body.rectify_by
        publish_by = add_working_days(body.inspected_on, self.publication_working_days)
        values: dict[str, Any] = {
            "status": InspectionStatus.RECORDED.value,
            "outcome": body.outcome.value,
            "severity": severity.value if severity else None,
            "findings": body.findings,
            "inspected_on": body.inspected_on,
            "recorded_by": actor.subject,
            "recorded_at": clock.now(),
            "publish_by": publish_by,
            # 一公开 within 20 working days: the result is public as soon as it is recorded.
            "published_on": today,
            "rectify_by": rectify_by,
            "correction_status": CorrectionStatus.OPEN.value if rectify_by else None,
        }
        await self.repository.update_inspection(inspection.id, **values)
        for key, value in values.items():
            setattr(inspection, key, value)
        payload: dict[str, Any] = {
            "inspection_id": str(inspection.id),
            "holder_uscc": inspection.holder_uscc,
            "outcome": body.outcome.value,
            "severity": values["severity"],
            "inspected_on": body.inspected_on.isoformat(),
            "evidence_sha256": [e.sha256 for e in evidence],
        }
        if original is not None and original.correction_status == CorrectionStatus.OPEN.value:
            closed = CorrectionStatus.MISSED if missed else CorrectionStatus.CLOSED_ON_TIME
            await self.repository.update_inspection(original.id, correction_status=closed.value)
            payload["correction_of"] = str(original.id)
            payload["correction_status"] = closed.value
        if rectify_by is not None:
            await self._order_reinspection(inspection, rectify_by=rectify_by)
        if severity is Severity.SERIOUS and not missed:
            await self._credit(inspection, kind=CreditKind.INSPECTION_NON_COMPLIANT, serious=False)
        if severity is Severity.GRAVE or missed:
            kind = (
                CreditKind.RECTIFICATION_MISSED if missed else CreditKind.INSPECTION_NON_COMPLIANT
            )
            await self._credit(inspection, kind=kind, serious=True)
            act = body.proposed_act or ProposedAct.SUSPENSION
            await self._propose(inspection, act=act, missed=missed, actor=actor)
            payload["proposed_act"] = act.value
        await self._record(inspection.plan_id, kind="result", payload=payload, actor=actor.subject)
        label = OUTCOME_LABELS[body.outcome]
        reason = f"{label}（{body.findings}）" if body.findings else label
        await self.outbox.add_many(
            self.session,
            [
                self._event(
                    await self._licence_row(inspection),
                    EventType.LICENCE_INSPECTED,
                    reason=reason,
                    extra={
                        "inspection_id": inspection.id,
                        "inspection_outcome": body.outcome.value,
                        "rectify_by": rectify_by,
                    },
                )
            ],
        )
        return await self.detail(inspection)

    async def _order_reinspection(self, inspection: Inspection, *, rectify_by: date) -> None:
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

    async def _credit(self, inspection: Inspection, *, kind: CreditKind, serious: bool) -> None:
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
                    "recorded_by": inspection.recorded_by or "system",
                    "recorded_at": clock.now(),
                }
            ],
        )

    async def _propose(
        self, inspection: Inspection, *, act: ProposedAct, missed: bool, actor: Principal
    ) -> None:
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
                    "proposed_by": actor.subject,
                    "proposed_at": clock.now(),
                }
            ],
        )

    async def _licence_row(self, inspection: Inspection) -> Any:
        """The inspected licence's current version (what its notice names)."""
        found = await self.repository.current_licences([inspection.licence_no])
        return found[inspection.licence_no]

    @staticmethod
    def _event(licence: Any, event_type: EventType, *, reason: str, extra: dict[str, Any]) -> Any:
        # Built without validation: every value comes from the register, validated when the
        # licence was issued (a draw builds thousands of these in one request).
        data = LicenceEventData.model_construct(
            licence_id=licence.id,
            licence_no=licence.licence_no,
            licence_type=licence.licence_type,
            holder_name=licence.holder_name,
            holder_uscc=licence.holder_uscc,
            status=licence.status,
            valid_until=licence.valid_until,
            application_id=licence.source_application_id,
            reason=reason,
            occurred_at=clock.now(),
            **extra,
        )
        return make_event(type=event_type, source=SOURCE, subject=data.licence_no, data=data)

    # --- 一公开 and statistics ---------------------------------------------------------------

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

    async def statistics(self, plan: InspectionPlan) -> PlanStatistics:
        """Drawn, inspected, compliant share and corrections per item and in total."""
        items = [
            _figures(str(row[0]), *(int(v or 0) for v in row[1:]))
            for row in await self.repository.statistics(plan.id)
        ]
        total = _figures("*", *(sum(getattr(i, f) for i in items) for f in _FIELDS))
        return PlanStatistics(plan_id=plan.id, total=total, items=items)


_FIELDS = (
    "drawn",
    "inspected",
    "compliant",
    "corrections_ordered",
    "corrections_closed_on_time",
    "corrections_missed",
)


def _figures(code: str, *values: int) -> ItemStatistics:
    figures = dict(zip(_FIELDS, values, strict=True))
    inspected = figures["inspected"]
    return ItemStatistics(
        item_code=code,
        compliant_share=round(figures["compliant"] / inspected, 4) if inspected else None,
        **figures,
    )


def replay_draw(inputs: DrawInputs) -> list[drawing.Target]:
    """The draw recomputed from its published inputs (what anyone can do with them)."""
    return drawing.draw(
        seed_hex=inputs.seed,
        candidates=[Candidate(u, RiskClass(c)) for u, c in inputs.candidates],
        ratios={RiskClass(c): r for c, r in inputs.ratios.items()},
        inspectors=inputs.inspectors,
        conflicts=[(i, u) for i, u in inputs.conflicts],
    )
