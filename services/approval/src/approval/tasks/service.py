"""The review chain inside the lifecycle: what ``accept``, ``review``, ``approve``, ``deny`` and
``withdraw`` check and do for an item whose guide declares a chain (``ActionService.act`` calls
``guard`` before and ``after`` with the actions whose handler says ``chain``, approval.handlers), and the checks every task move shares.

Items without a chain are untouched: ``chain_for`` answers None from a dictionary after the first
case of an item version, and nothing else here runs.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.service import CalendarService
from approval.catalogue.repository import ITEM_VERSIONS, ItemRepository
from approval.lifecycle import Action
from approval.models import Application
from approval.tasks.chain import (
    ReviewChain,
    StepKind,
    TaskKind,
    TaskStatus,
    current_step,
    decision_check,
)
from approval.tasks.errors import (
    ChainStepPending,
    DissentUnresolved,
    OpinionEscalated,
    OpinionsPending,
    TaskAssignedElsewhere,
    TaskClosed,
)
from approval.tasks.models import ReviewTask
from approval.tasks.repository import TaskRepository, facts_of, task_row
from govshared import jurisdictions
from govshared.applications import ApplicationState
from govshared.auth import Principal
from govshared.events import EventType
from govshared.outbox import OutboxWriter
from govshared.problems import Forbidden

# Item versions are immutable once published: their chain (or none) is read once per process.
_CHAINS: dict[tuple[object, str, int], ReviewChain | None] = {}


async def chain_for(session: AsyncSession, application: Application) -> ReviewChain | None:
    """The review chain of the item version the case was submitted under, if it declares one."""
    # Keyed by the session's engine (tests run several databases in one process), which costs a
    # case without a chain an attribute read and a dictionary lookup per action.
    key = (session.bind, application.item_code, application.item_version)
    if key in _CHAINS:
        return _CHAINS[key]
    version = await ITEM_VERSIONS.get(
        ItemRepository(session), application.item_code, application.item_version
    )
    guide = version.guide if version is not None else {}
    raw = guide.get("review_chain")
    chain = ReviewChain.model_validate(raw) if raw else None
    _CHAINS[key] = chain
    return chain


def opinion_summary(task: ReviewTask, *, deemed: bool = False) -> dict[str, Any]:
    """A department's opinion as the decision records it."""
    return {
        "department": task.department,
        "name": task.name,
        "outcome": "deemed_agreement" if deemed else task.outcome,
        **({"reasons": task.reasons} if task.reasons and not deemed else {}),
        **({"conditions": task.conditions} if task.conditions and not deemed else {}),
        **({"overridden_by_government_head": task.override_reason} if task.overridden_by else {}),
    }


class ChainKeeper:
    """The review chain's part in a lifecycle action, and the checks every task move shares."""

    def __init__(self, session: AsyncSession, outbox: OutboxWriter) -> None:
        self.session = session
        self.outbox = outbox
        self.tasks = TaskRepository(session)

    async def may_act(self, task: ReviewTask, principal: Principal, today: date) -> dict[str, str]:
        """Is it the caller's task: open, of their role, department and jurisdiction, unassigned,
        theirs, or theirs by a delegation in force? The audit details of acting for someone."""
        if task.status != TaskStatus.OPEN:
            raise TaskClosed(f"任务「{task.name}」已{_STATUS_LABELS.get(task.status, '关闭')}")
        if principal.role.value != task.role:
            raise Forbidden(f"任务「{task.name}」由 {task.role} 办理")
        if not jurisdictions.covers(principal.jurisdiction, task.jurisdiction):
            raise Forbidden("该任务不属于本区划")
        if task.department is not None and principal.department != task.department:
            raise Forbidden(f"任务「{task.name}」由部门 {task.department} 办理")
        if task.assignee is None or task.assignee == principal.subject:
            return {}
        delegation = await self.tasks.acts_for(
            delegate=principal.subject, delegator=task.assignee, role=task.role, today=today
        )
        if delegation is None:
            raise TaskAssignedElsewhere(f"任务「{task.name}」已由 {task.assignee} 办理")
        return {"on_behalf_of": task.assignee, "delegation_id": str(delegation.id)}

    async def guard(
        self,
        chain: ReviewChain,
        *,
        action: Action,
        application: Application,
        principal: Principal,
        today: date,
    ) -> dict[str, Any]:
        """Check a lifecycle action against the chain; the details it adds to the audit entry.

        A review completes the current review step; a decision is taken only at the decision step,
        once every consulted department has answered or its due date has passed (and no
        disagreement stands unless the decision is a denial that cites it)."""
        if action is Action.ACCEPT:
            return {"review_chain": [step.name for step in chain.steps]}
        if action is Action.WITHDRAW:
            return {}
        tasks = await self.tasks.for_application(application.id)
        facts = [facts_of(t) for t in tasks]
        step = current_step(facts)
        expected = StepKind.REVIEW if action is Action.REVIEW else StepKind.DECIDE
        if step is None or chain.steps[step.step_index].kind is not expected:
            at = chain.steps[step.step_index].name if step is not None else "无"
            raise ChainStepPending(
                f"当前环节为「{at}」，不能执行「{action.value}」；审查环节须依次办结",
                current_step=at,
            )
        task = next(t for t in tasks if t.id == step.id)
        details: dict[str, Any] = {
            "task_id": str(task.id),
            "step": task.step_key,
            "step_name": task.name,
            **await self.may_act(task, principal, today),
        }
        if action is Action.REVIEW:
            return details
        check = decision_check(chain, facts, today)
        by_id = {t.id: t for t in tasks}
        if check.pending:
            raise OpinionsPending(
                "尚待答复："
                + "、".join(f"{by_id[t.id].name}（{t.due_on}前）" for t in check.pending),
                departments=[t.department for t in check.pending],
            )
        if check.escalated:
            raise OpinionEscalated(
                "逾期未答复：" + "、".join(by_id[t.id].name for t in check.escalated),
                departments=[t.department for t in check.escalated],
            )
        if action is Action.APPROVE and check.dissent:
            raise DissentUnresolved(
                "不同意："
                + "；".join(f"{by_id[t.id].name}：{by_id[t.id].reasons}" for t in check.dissent),
                departments=[t.department for t in check.dissent],
            )
        deemed = {t.id for t in check.deemed}
        opinions = [
            opinion_summary(t, deemed=t.id in deemed)
            for t in tasks
            if t.kind == TaskKind.OPINION and t.status != TaskStatus.CANCELLED
        ]
        if opinions:
            details["opinions"] = opinions
        if check.deemed:
            details["deemed_agreement"] = [t.department for t in check.deemed]
        if action is Action.DENY and check.dissent:
            # The denial cites the disagreeing departments and their reasons (Art. 38(2)).
            details["cited_opinions"] = [opinion_summary(by_id[t.id]) for t in check.dissent]
        return details

    async def after(
        self,
        chain: ReviewChain,
        *,
        action: Action,
        application: Application,
        principal: Principal,
        details: dict[str, Any],
        state: ApplicationState,
        seq: int,
        prev_hash: str,
        today: date,
        now: datetime,
        decision_due: date | None,
    ) -> None:
        """What the action does to the chain's tasks, each new task in the audit trail with its
        event (the staff it concerns are told through notify)."""
        if action is Action.WITHDRAW:
            await self.tasks.cancel_open(application.id, now)
            return
        if action is Action.ACCEPT:
            await self.tasks.insert(
                task_row(
                    application_id=application.id,
                    jurisdiction=application.jurisdiction,
                    kind=TaskKind.STEP.value,
                    step_index=0,
                    step_key=chain.steps[0].key,
                    name=chain.steps[0].name,
                    role=chain.steps[0].role.value,
                    department=chain.steps[0].department,
                    status=TaskStatus.DONE.value,
                    assignee=principal.subject,
                    outcome="completed",
                    created_at=now,
                    completed_at=now,
                    completed_by=principal.subject,
                )
            )
            recorder = MoveRecorder(self, application, state, seq, prev_hash, now)
            await recorder.open_step(chain, 1, assignee=None, today=today)
            for consultation in chain.consultations:
                due = (
                    await CalendarService(self.session).add_working_days(
                        today, consultation.working_days, jurisdiction=application.jurisdiction
                    )
                ).due
                if decision_due is not None:
                    due = min(due, decision_due)  # inside the decision limit
                task_id = uuid.uuid4()
                await self.tasks.insert(
                    task_row(
                        id=task_id,
                        application_id=application.id,
                        jurisdiction=application.jurisdiction,
                        kind=TaskKind.OPINION.value,
                        step_index=-1,
                        step_key=consultation.department,
                        name=consultation.name,
                        role=consultation.role.value,
                        department=consultation.department,
                        due_on=due,
                        created_at=now,
                    )
                )
                await recorder.record(
                    "request_opinion",
                    EventType.APPLICATION_OPINION_REQUESTED,
                    {
                        "task_id": str(task_id),
                        "department": consultation.department,
                        "department_name": consultation.name,
                        "role": consultation.role.value,
                        "due_on": due.isoformat(),
                    },
                    actor=("system", "service"),
                    due_on=due,
                )
            return
        task_id = uuid.UUID(details["task_id"])
        await self.tasks.change(
            task_id,
            {
                "status": TaskStatus.DONE.value,
                "outcome": "completed" if action is Action.REVIEW else action.value,
                "reasons": details.get("opinion"),
                "completed_at": now,
                "completed_by": principal.subject,
            },
        )
        if action is Action.REVIEW:
            index = chain.index_of(details["step"])
            assert index is not None
            recorder = MoveRecorder(self, application, state, seq, prev_hash, now)
            await recorder.open_step(chain, index + 1, assignee=None, today=today)
            return
        deemed = set(details.get("deemed_agreement", []))
        if deemed:
            for task in await self.tasks.for_application(application.id):
                if task.kind == TaskKind.OPINION and task.department in deemed:
                    await self.tasks.change(
                        task.id,
                        {
                            "status": TaskStatus.DONE.value,
                            "outcome": "deemed_agreement",
                            "completed_at": now,
                        },
                    )


_STATUS_LABELS = {"done": "办结", "returned": "退回", "cancelled": "取消"}


class MoveRecorder:
    """Appends the audit entries (and their events) of the moves one request makes, in order."""

    def __init__(
        self,
        keeper: ChainKeeper,
        application: Application,
        state: ApplicationState,
        seq: int,
        prev_hash: str,
        now: datetime,
    ) -> None:
        self.keeper = keeper
        self.application = application
        self.state = state
        self.seq = seq
        self.prev_hash = prev_hash
        self.now = now

    async def record(
        self,
        action: str,
        event_type: EventType,
        details: dict[str, Any],
        *,
        actor: tuple[str, str],
        reason: str | None = None,
        due_on: date | None = None,
    ) -> None:
        from approval.transitions import EVENT_ROW_FIELDS, record_transition  # (a cycle at import)

        self.prev_hash = await record_transition(
            self.keeper.session,
            outbox=self.keeper.outbox,
            row={c: getattr(self.application, c) for c in EVENT_ROW_FIELDS},
            seq=self.seq,
            prev_hash=self.prev_hash,
            action=action,
            from_state=self.state,
            to_state=self.state,
            actor=actor,
            at=self.now,
            details=details,
            event_type=event_type,
            reason=reason,
            due_on=due_on,
        )
        self.seq += 1

    async def open_step(
        self, chain: ReviewChain, index: int, *, assignee: str | None, today: date
    ) -> uuid.UUID:
        """Open the task of a step, for its assignee (told with their delegates) or its role."""
        step = chain.steps[index]
        task_id = uuid.uuid4()
        await self.keeper.tasks.insert(
            task_row(
                id=task_id,
                application_id=self.application.id,
                jurisdiction=self.application.jurisdiction,
                kind=TaskKind.STEP.value,
                step_index=index,
                step_key=step.key,
                name=step.name,
                role=step.role.value,
                department=step.department,
                assignee=assignee,
                created_at=self.now,
            )
        )
        await self.record(
            "open_task",
            EventType.APPLICATION_TASK_OPENED,
            await self.audience(
                {"task_id": str(task_id), "step": step.key, "step_name": step.name},
                role=step.role.value,
                department=step.department,
                assignee=assignee,
                today=today,
            ),
            actor=("system", "service"),
        )
        return task_id

    async def audience(
        self,
        details: dict[str, Any],
        *,
        role: str,
        department: str | None,
        assignee: str | None,
        today: date,
    ) -> dict[str, Any]:
        """Who a task's event is for (notify/rules.py reads these keys): the assignee and their
        delegates in force, else the staff of the role (and department) of the jurisdiction."""
        details = {**details, "role": role}
        if department is not None:
            details["department"] = department
        if assignee is not None:
            details["assignee"] = assignee
            delegates = await self.keeper.tasks.delegates_of(
                delegator=assignee, role=role, today=today
            )
            if delegates:
                details["delegates"] = delegates
        return details
