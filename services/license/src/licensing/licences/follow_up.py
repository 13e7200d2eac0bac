"""告知承诺 follow-up (国办发〔2020〕42号): every licence granted on a commitment is verified, a random
share on site; unmet conditions are ordered put right, a false commitment revokes the licence and
is recorded as bad credit, which bars the commitment route."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from govshared.auth import Principal, Role
from govshared.events import EventType
from licensing import clock
from licensing.errors import (
    RectificationDeadlineInvalid,
    RectificationPeriodRunning,
    RevocationNeedsDecider,
    VerificationAlreadyDecided,
)
from licensing.licences.acts import LicenceActs
from licensing.licences.records import LicenceRecords
from licensing.licences.repository import LicenceRepository, history_row, loaded
from licensing.licences.schemas import (
    CommitmentEligibility,
    CreditRecordCreate,
    CreditRecordOut,
    VerificationDecision,
    VerificationOutcome,
)
from licensing.models import (
    CreditKind,
    Licence,
    LicenceAction,
    LicenceStatus,
    VerificationMethod,
    VerificationStatus,
    VerificationTask,
)

# Tasks that still need a verification: first checks and checks after 责令限期整改.
TO_VERIFY = (VerificationStatus.OPEN.value, VerificationStatus.RECTIFYING.value)
# Who may revoke a licence (撤销, Art. 69), at /licences/{no}/revocation and the other acts, or by
# a verification result; a reviewer records passes and orders to rectify.
REVOKERS = (Role.APPROVER, Role.HEAD, Role.ADMIN)


class CommitmentFollowUp:
    """Verification tasks of commitment grants, and the credit records they leave."""

    def __init__(self, records: LicenceRecords, *, rng: random.Random) -> None:
        self.records = records
        self.repository = records.repository
        self.policy = records.policy
        # 双随机 draws must not be predictable by the enterprises drawn.
        self.rng = rng

    async def task(self, task_id: uuid.UUID) -> VerificationTask | None:
        """A verification task."""
        return await self.repository.task(task_id)

    async def tasks(
        self,
        *,
        jurisdiction_prefix: str | None,
        status: VerificationStatus | None,
        after: tuple[date, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[VerificationTask]:
        """Verification tasks by due date; without a status, the work to do: open tasks and those
        to verify again once their rectification deadline has come."""
        return await self.repository.tasks(
            jurisdiction_prefix=jurisdiction_prefix,
            statuses=(status.value,) if status else TO_VERIFY,
            after=after,
            limit=limit,
        )

    async def schedule_verification(self, licence: dict[str, Any], *, today: date) -> None:
        """Every commitment grant is verified; a random share is drawn for an on-site check."""
        drawn = self.rng.random() < self.policy.on_site_share
        pool = list(self.policy.inspectors)
        inspectors = self.rng.sample(pool, k=min(2, len(pool))) if drawn else []
        await self.repository.insert_task(
            {
                "id": uuid.uuid4(),
                "licence_no": licence["licence_no"],
                "holder_uscc": licence["holder_uscc"],
                "holder_name": licence["holder_name"],
                "item_code": licence["item_code"],
                "jurisdiction": licence["jurisdiction"],
                "due_on": today + timedelta(days=self.policy.verification_days),
                "method": (
                    VerificationMethod.ON_SITE if drawn else VerificationMethod.DOCUMENT
                ).value,
                "drawn": drawn,
                "inspectors": inspectors,
                "status": VerificationStatus.OPEN.value,
                "findings": None,
                "decided_by": None,
                "decided_at": None,
                "created_at": clock.now(),
            }
        )

    async def decide_verification(
        self, task: VerificationTask, *, body: VerificationDecision, actor: Principal
    ) -> VerificationTask:
        """Record a verification: conditions unmet are first ordered put right by a deadline
        (责令限期整改) and verified again; only a false commitment, or conditions still unmet
        after the deadline, revoke the licence (撤销) and record bad credit."""
        if task.status not in (VerificationStatus.OPEN, VerificationStatus.RECTIFYING):
            raise VerificationAlreadyDecided(f"核查任务已有结论：{task.status}")
        today = clock.today()
        now = clock.now()
        outcome = body.outcome
        rectifying = task.status == VerificationStatus.RECTIFYING
        values: dict[str, Any] = {"findings": body.findings, "decided_by": actor.subject}
        if outcome is VerificationOutcome.PASSED:
            values.update(status=VerificationStatus.PASSED.value, decided_at=now)
        elif outcome is VerificationOutcome.CONDITIONS_UNMET and not rectifying:
            if body.rectify_by is None or body.rectify_by <= today:
                raise RectificationDeadlineInvalid("请载明整改期限（rectify_by），且应晚于今天")
            values.update(
                status=VerificationStatus.RECTIFYING.value,
                rectify_by=body.rectify_by,
                rectification_findings=body.findings,
                due_on=body.rectify_by,
            )
        elif outcome is VerificationOutcome.CONDITIONS_UNMET:
            assert task.rectify_by is not None
            if today <= task.rectify_by:
                raise RectificationPeriodRunning(
                    f"整改期限至{task.rectify_by}，期满后方可认定整改后仍不符合条件"
                )
            values.update(status=VerificationStatus.FAILED.value, decided_at=now)
        else:
            values.update(status=VerificationStatus.FAILED.value, decided_at=now)
        if values["status"] == VerificationStatus.FAILED.value and actor.role not in REVOKERS:
            raise RevocationNeedsDecider(
                "该核查结论将依《行政许可法》第六十九条撤销行政许可并记入信用记录，"
                "请提交审批负责人作出"
            )
        if not await self.repository.decide_task(
            task_id=task.id, expected=task.status, values=values
        ):
            raise VerificationAlreadyDecided("核查任务已被他人作出结论")
        loaded(task, values)
        licence = await self.repository.current(task.licence_no)
        live = licence is not None and licence.status in (
            LicenceStatus.VALID,
            LicenceStatus.SUSPENDED,
        )
        if task.status == VerificationStatus.RECTIFYING:
            if licence is not None and live:
                await self._order_rectification(licence, task=task, actor=actor.subject)
            return task
        if task.status != VerificationStatus.FAILED:
            return task
        false_commitment = outcome is VerificationOutcome.FALSE_COMMITMENT
        if false_commitment:
            reason = f"告知承诺核查发现虚假承诺：{body.findings}"
            basis = "《中华人民共和国行政许可法》第六十九条第二款；国办发〔2020〕42号"
        else:
            reason = (
                f"告知承诺核查发现不符合承诺的条件，责令于{task.rectify_by}前整改，"
                f"期满复查仍不符合：{body.findings}"
            )
            basis = "《中华人民共和国行政许可法》第六十九条；国办发〔2020〕42号"
        if licence is not None and live:
            await LicenceActs(self.records).revoke(
                licence, legal_basis=basis, reason=reason, actor=actor.subject
            )
        await self.repository.insert_credit(
            {
                "id": uuid.uuid4(),
                "holder_uscc": task.holder_uscc,
                "kind": (
                    CreditKind.FALSE_COMMITMENT
                    if false_commitment
                    else CreditKind.COMMITMENT_UNFULFILLED
                ).value,
                # A false commitment bars the route (42号文); unmet conditions are recorded only.
                "serious": false_commitment,
                "bars_commitment": false_commitment,
                "reason": reason,
                "licence_no": task.licence_no,
                "item_code": task.item_code,
                "verification_task_id": task.id,
                "recorded_by": actor.subject,
                "recorded_at": now,
            }
        )
        return task

    async def _order_rectification(
        self, licence: Licence, *, task: VerificationTask, actor: str
    ) -> None:
        """责令限期整改: the history records it and the holder is told the deadline."""
        reason = (
            f"告知承诺核查发现不符合承诺的条件：{task.rectification_findings}。"
            f"责令于{task.rectify_by}前整改，期满后复查"
        )
        await self.repository.add_history(
            history_row(
                licence,
                action=LicenceAction.RECTIFICATION_ORDERED,
                from_status=licence.status,
                to_status=licence.status,
                reason=reason,
                actor=actor,
                at=clock.now(),
                details={
                    "rectify_by": str(task.rectify_by),
                    "verification_task_id": str(task.id),
                    "basis": "国办发〔2020〕42号",
                },
            )
        )
        await self.records.emit(
            licence,
            EventType.LICENCE_RECTIFICATION_ORDERED,
            status=licence.status,
            reason=reason,
            act={"rectify_by": task.rectify_by, "legal_basis": "国办发〔2020〕42号"},
        )

    async def add_credit_record(
        self, *, uscc: str, body: CreditRecordCreate, actor: Principal
    ) -> CreditRecordOut:
        """Record bad credit from another source; a serious record bars the commitment route."""
        row = {
            "id": uuid.uuid4(),
            "holder_uscc": uscc,
            "kind": body.kind.value,
            "serious": body.serious,
            "bars_commitment": body.serious or body.kind is CreditKind.FALSE_COMMITMENT,
            "reason": body.reason,
            "licence_no": None,
            "item_code": None,
            "verification_task_id": None,
            "recorded_by": actor.subject,
            "recorded_at": clock.now(),
        }
        await self.repository.insert_credit(row)
        return CreditRecordOut.model_validate(row)

    async def commitment_eligibility(self, uscc: str) -> CommitmentEligibility:
        """Whether the enterprise may choose 告知承诺 (no false commitment, no serious bad credit)."""
        return await commitment_eligibility(self.repository, uscc)


async def commitment_eligibility(repository: LicenceRepository, uscc: str) -> CommitmentEligibility:
    """Whether the enterprise may choose 告知承诺 (no false commitment, no serious bad credit)."""
    records = await repository.credit_records(uscc)
    reasons = []
    for record in records:
        if not record.bars_commitment:
            continue
        if record.kind == CreditKind.FALSE_COMMITMENT:
            reasons.append(f"曾作出虚假承诺（证照 {record.licence_no or '—'}），不得适用告知承诺")
        else:
            reasons.append(f"存在严重失信记录：{record.reason}")
    return CommitmentEligibility(
        uscc=uscc,
        eligible=not reasons,
        reasons=reasons,
        records=[CreditRecordOut.model_validate(r) for r in records],
    )
