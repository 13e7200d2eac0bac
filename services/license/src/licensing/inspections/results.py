"""Inspection tasks and their results: evidence files, the result (published at once, 一公开),
the holder's notice, and what the result sets off (``corrections.py``)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from govshared.chinatime import CHINA
from govshared.db import end_read
from govshared.events import EventType
from govshared.outbox import OutboxWriter
from govshared.problems import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from govshared.storage import Storage, sniff_content_type
from licensing import clock
from licensing.errors import (
    EvidenceRequired,
    InspectionAlreadyRecorded,
    RectificationDeadlineInvalid,
    RectificationPeriodRunning,
)
from licensing.inspections import record
from licensing.inspections.corrections import (
    CORRECTED,
    MAX_RECTIFICATION,
    Consequences,
    act_endpoint,
)
from licensing.inspections.models import (
    OUTCOME_LABELS,
    CorrectionStatus,
    Inspection,
    InspectionStatus,
    Outcome,
    ProposedAct,
    Severity,
)
from licensing.inspections.notices import licence_event
from licensing.inspections.repository import EVIDENCE, InspectionRepository
from licensing.inspections.schemas import (
    EvidenceOut,
    InspectionDetail,
    InspectionOut,
    ProposalOut,
    ResultCreate,
)
from licensing.models import CreditKind
from licensing.workdays import add_working_days

ACCEPTED_EVIDENCE = ["application/pdf", "application/ofd", "image/png", "image/jpeg"]


class ResultService:
    """Inspection tasks, their evidence and results, and the proposals they lead to."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: OutboxWriter,
        storage: Storage,
        publication_working_days: int,
        reinspection_working_days: int,
        max_upload_bytes: int,
    ) -> None:
        self.session = session
        self.repository = InspectionRepository(session)
        self.outbox = outbox
        self.storage = storage
        self.publication_working_days = publication_working_days
        self.max_upload_bytes = max_upload_bytes
        self.consequences = Consequences(
            session, outbox=outbox, reinspection_working_days=reinspection_working_days
        )

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
                _proposal_out(r)
                for r in await self.repository.proposals(inspection_id=inspection.id)
            ],
        )

    async def proposals(self, *, jurisdiction_prefix: str | None) -> list[ProposalOut]:
        """Proposed licence acts in the caller's area, with each licence's status now."""
        rows = await self.repository.proposals(jurisdiction_prefix=jurisdiction_prefix)
        return [_proposal_out(r) for r in rows]

    async def add_evidence(
        self, inspection: Inspection, *, file: UploadFile, actor: Principal
    ) -> EvidenceOut:
        """Store an evidence file checked by its content (PDF, OFD, PNG, JPEG).

        The file is stored (object storage is a network call) once the read has ended, with no
        transaction open; the inspection is then read again in the write's transaction (locked on
        PostgreSQL) and must still be open, as a result recorded meanwhile closes it.
        """
        if inspection.status != InspectionStatus.OPEN.value:
            raise InspectionAlreadyRecorded()
        inspection_id = inspection.id  # the end of the read expires the row
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
        key = f"inspections/{inspection_id}/{evidence_id}"
        await end_read(self.session)
        await self.storage.put(key, data, content_type=real)
        current = await self.repository.inspection(inspection_id, lock=True)
        if current is None or current.status != InspectionStatus.OPEN.value:
            raise InspectionAlreadyRecorded()
        row = {
            "id": evidence_id,
            "inspection_id": inspection_id,
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
        if body.inspected_on < inspection.created_at.astimezone(CHINA).date():
            raise ValidationFailed("检查日期不得早于抽查任务的生成日期")
        evidence = await self.repository.evidence(inspection.id)
        if not evidence:
            raise EvidenceRequired()
        original = (
            await self.repository.inspection(inspection.reinspection_of)
            if inspection.reinspection_of
            else None
        )
        order = original if original is not None and original.rectify_by is not None else None
        severity = body.severity
        if order is not None:
            assert order.rectify_by is not None
            # Before the deadline the holder is still within its time to put things right: only
            # a re-inspection finding them put right settles the order then. Any other outcome
            # (still not right, not found, unreachable) would mark it missed, with a serious
            # credit record and a proposed act, for a deadline not yet passed; it is refused and
            # the re-inspection stays open, to be recorded after the deadline (or missed by the
            # timer when nobody records it by its due date).
            if body.outcome is not Outcome.COMPLIANT and body.inspected_on <= order.rectify_by:
                raise RectificationPeriodRunning(
                    f"整改期限至{order.rectify_by.isoformat()}届满，届满前的复查只能认定已整改到位，"
                    "不能认定逾期未改正；其他复查结果请在期限届满后录入"
                )
        rectify_by = None
        if body.outcome is Outcome.NON_COMPLIANT and order is None and severity in CORRECTED:
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
        # One conditional UPDATE (``WHERE status = 'open'``): of two results recorded at once
        # only one goes on, and the other draws no credit record or proposal a second time.
        if not await self.repository.record_inspection(inspection.id, **values):
            raise InspectionAlreadyRecorded()
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
        consequences = self.consequences
        missed = False
        if order is not None:
            closed = (
                CorrectionStatus.CLOSED_ON_TIME
                if body.outcome is Outcome.COMPLIANT
                else CorrectionStatus.MISSED
            )
            # Settled by the timer already: its consequences were drawn then, not again now.
            if await consequences.settle(order, closed):
                missed = closed is CorrectionStatus.MISSED
                payload["correction_of"] = str(order.id)
                payload["correction_status"] = closed.value
        if rectify_by is not None:
            await consequences.order_reinspection(inspection, rectify_by=rectify_by)
        if order is None and severity is Severity.SERIOUS:
            await consequences.credit(
                inspection,
                kind=CreditKind.INSPECTION_NON_COMPLIANT,
                serious=False,
                actor=actor.subject,
            )
        act = body.proposed_act or ProposedAct.SUSPENSION
        if missed:
            assert order is not None
            proposed = await consequences.missed(
                order, found_by=inspection, act=act, actor=actor.subject
            )
            if proposed is not None:
                payload["proposed_act"] = proposed.value
        elif order is None and severity is Severity.GRAVE:
            await consequences.credit(
                inspection,
                kind=CreditKind.INSPECTION_NON_COMPLIANT,
                serious=True,
                actor=actor.subject,
            )
            await consequences.propose(inspection, act=act, missed=False, actor=actor.subject)
            payload["proposed_act"] = act.value
        await record.append(
            self.repository, inspection.plan_id, kind="result", payload=payload, actor=actor.subject
        )
        label = OUTCOME_LABELS[body.outcome]
        reason = f"{label}（{body.findings}）" if body.findings else label
        await self.outbox.add_many(
            self.session,
            [
                licence_event(
                    await consequences.licence_row(inspection),
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
