"""The moves of a review chain, one handler per action of the lifecycle table
(``approval.lifecycle.TASK_MOVES`` says what each does; ``HANDLERS`` here does it).

Every move runs the same way (``TaskMoves.move``): the rule of the table (role, state), the
handler's validation, then the application row is taken (optimistic ``row_version``: two staff at
once, one wins, the other gets 409), and the handler's writes and its audit entry with its event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from approval.errors import ConcurrentModification, IllegalTransition
from approval.lifecycle import RULES, STATE_LABELS, TASK_MOVES, Action
from approval.models import Application
from approval.repository import ApplicationRepository
from approval.tasks.chain import (
    MissingOpinion,
    OpinionOutcome,
    ReviewChain,
    TaskKind,
    TaskStatus,
    current_step,
    last_completer,
    return_targets,
)
from approval.tasks.directory import StaffDirectory
from approval.tasks.errors import (
    ChainStepPending,
    MoveInvalid,
    NotConsulted,
    NothingToOverride,
    OpinionAlreadyGiven,
    TaskAssignedElsewhere,
    TaskNotFound,
)
from approval.tasks.models import ReviewTask
from approval.tasks.repository import facts_of
from approval.tasks.schemas import (
    OpinionRequest,
    OverrideRequest,
    ReturnRequest,
    TransferRequest,
)
from approval.tasks.service import ChainKeeper, MoveRecorder, chain_for
from govshared.applications import ApplicationState
from govshared.auth import Principal
from govshared.outbox import OutboxWriter
from govshared.problems import Forbidden


@dataclass
class Move:
    """One move in the making: what the handler's validation found, for its apply step."""

    principal: Principal
    application: Application
    chain: ReviewChain
    tasks: list[ReviewTask]
    today: date
    now: datetime
    task: ReviewTask | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Handler:
    """What a move checks (may raise) and what it writes (with the recorder at hand)."""

    validate: Callable[[ChainKeeper, Move, Any], Awaitable[None]]
    apply: Callable[[ChainKeeper, Move, MoveRecorder], Awaitable[None]]


def _task(move: Move, task_id: uuid.UUID | None) -> ReviewTask:
    task = next((t for t in move.tasks if t.id == task_id), None)
    if task is None:
        raise TaskNotFound()
    return task


# -- 签收 ----------------------------------------------------------------------------------------


async def _validate_claim(keeper: ChainKeeper, move: Move, body: Any) -> None:
    assert move.task is not None
    move.details = {"task_id": str(move.task.id), "step": move.task.step_key}
    move.details |= await keeper.may_act(move.task, move.principal, move.today)


async def _apply_claim(keeper: ChainKeeper, move: Move, recorder: MoveRecorder) -> None:
    assert move.task is not None
    if move.task.assignee is None:
        if not await keeper.tasks.claim(move.task.id, move.principal.subject):
            raise TaskAssignedElsewhere("该任务已被其他工作人员签收")
        move.details["assignee"] = move.principal.subject


# -- 退回 ----------------------------------------------------------------------------------------


async def _validate_return(keeper: ChainKeeper, move: Move, body: Any) -> None:
    assert isinstance(body, ReturnRequest) and move.task is not None
    facts = [facts_of(t) for t in move.tasks]
    current = current_step(facts)
    if current is None or current.id != move.task.id:
        raise ChainStepPending("只能退回办件当前所在环节的任务")
    move.details = {"task_id": str(move.task.id), "from_step": move.task.step_key}
    move.details |= await keeper.may_act(move.task, move.principal, move.today)
    target = move.chain.index_of(body.to_step)
    allowed = return_targets(move.chain, current)
    if target is None or target not in allowed:
        names = "、".join(
            f"{move.chain.steps[i].name}（{move.chain.steps[i].key}）" for i in allowed
        )
        raise MoveInvalid(
            f"只能退回至此前的审查环节：{names or '无'}（受理不因退回而撤销）",
            allowed_steps=[move.chain.steps[i].key for i in allowed],
        )
    move.reason = body.reason
    move.changes = {"target": target, "assignee": last_completer(facts, target)}


async def _apply_return(keeper: ChainKeeper, move: Move, recorder: MoveRecorder) -> None:
    assert move.task is not None
    if not await keeper.tasks.change(
        move.task.id,
        {
            "status": TaskStatus.RETURNED.value,
            "outcome": "returned",
            "reasons": move.reason,
            "completed_at": move.now,
            "completed_by": move.principal.subject,
        },
    ):
        raise ConcurrentModification("任务已被他人同时处理，本次操作未生效")
    target: int = move.changes["target"]
    step = move.chain.steps[target]
    new_id = uuid.uuid4()
    await keeper.tasks.insert(
        {
            **_step_row(move, target, new_id),
            "assignee": move.changes["assignee"],
        }
    )
    move.details = await recorder.audience(
        {
            **move.details,
            "to_step": step.key,
            "to_step_name": step.name,
            "new_task_id": str(new_id),
        },
        role=step.role.value,
        department=step.department,
        assignee=move.changes["assignee"],
        today=move.today,
    )


def _step_row(move: Move, index: int, task_id: uuid.UUID) -> dict[str, Any]:
    from approval.tasks.repository import task_row

    step = move.chain.steps[index]
    return task_row(
        id=task_id,
        application_id=move.application.id,
        jurisdiction=move.application.jurisdiction,
        kind=TaskKind.STEP.value,
        step_index=index,
        step_key=step.key,
        name=step.name,
        role=step.role.value,
        department=step.department,
        created_at=move.now,
    )


# -- 转办 ----------------------------------------------------------------------------------------


async def _validate_transfer(keeper: ChainKeeper, move: Move, body: Any) -> None:
    assert isinstance(body, TransferRequest) and move.task is not None
    move.details = {"task_id": str(move.task.id), "step": move.task.step_key}
    move.details |= await keeper.may_act(move.task, move.principal, move.today)
    if body.to in (move.principal.subject, move.task.assignee):
        raise MoveInvalid("转办须转给其他工作人员")
    # The staff directory: the same role in the task's jurisdiction (and its department).
    await StaffDirectory(keeper.session).eligible(
        body.to,
        role=move.task.role,
        jurisdiction=move.task.jurisdiction,
        department=move.task.department,
        what="转办",
    )
    move.details["from"] = move.task.assignee or move.principal.subject
    move.reason = body.reason
    move.changes = {"to": body.to}


async def _apply_transfer(keeper: ChainKeeper, move: Move, recorder: MoveRecorder) -> None:
    assert move.task is not None
    if not await keeper.tasks.change(move.task.id, {"assignee": move.changes["to"]}):
        raise ConcurrentModification("任务已被他人同时处理，本次操作未生效")
    # The directory said the new assignee holds the task's role, department and jurisdiction;
    # their token is checked again when they act.
    move.details = await recorder.audience(
        {**move.details, "step_name": move.task.name},
        role=move.task.role,
        department=move.task.department,
        assignee=move.changes["to"],
        today=move.today,
    )


# -- 会签意见 ------------------------------------------------------------------------------------


async def _validate_opinion(keeper: ChainKeeper, move: Move, body: Any) -> None:
    assert isinstance(body, OpinionRequest)
    department = move.principal.department
    consulted = [t for t in move.tasks if t.kind == TaskKind.OPINION and t.department == department]
    if department is None or not consulted:
        raise NotConsulted()
    task = next((t for t in consulted if t.status == TaskStatus.OPEN), None)
    if task is None:
        if consulted[0].outcome == "deemed_agreement":
            # 逾期未答复视为同意 took effect when the due date passed (the opinion timer).
            raise OpinionAlreadyGiven(f"答复期限已届满，{consulted[0].name}的意见已视为同意")
        raise OpinionAlreadyGiven(f"{consulted[0].name}已出具意见")
    if body.opinion is OpinionOutcome.DISAGREE and not body.reasons:
        raise MoveInvalid("不同意的意见须说明理由 reasons")
    if body.opinion is OpinionOutcome.CONDITIONAL and not body.conditions:
        raise MoveInvalid("附条件同意须列明条件 conditions")
    move.task = task
    move.details = {
        "task_id": str(task.id),
        "department": task.department,
        "department_name": task.name,
        "opinion": body.opinion.value,
        **({"reasons": body.reasons} if body.reasons else {}),
        **({"conditions": body.conditions} if body.conditions else {}),
        **({"late": True} if task.due_on is not None and move.today > task.due_on else {}),
    }
    move.details |= await keeper.may_act(task, move.principal, move.today)
    move.changes = {
        "opinion": body.opinion.value,
        "reasons": body.reasons,
        "conditions": body.conditions,
    }


async def _apply_opinion(keeper: ChainKeeper, move: Move, recorder: MoveRecorder) -> None:
    assert move.task is not None
    if not await keeper.tasks.change(
        move.task.id,
        {
            "status": TaskStatus.DONE.value,
            "outcome": move.changes["opinion"],
            "reasons": move.changes["reasons"],
            "conditions": move.changes["conditions"],
            "assignee": move.task.assignee or move.principal.subject,
            "completed_at": move.now,
            "completed_by": move.principal.subject,
        },
    ):
        raise OpinionAlreadyGiven("本部门已出具意见")


# -- 负责人决定 ----------------------------------------------------------------------------------


async def _validate_override(keeper: ChainKeeper, move: Move, body: Any) -> None:
    assert isinstance(body, OverrideRequest) and move.task is not None
    task = move.task
    if task.kind != TaskKind.OPINION or task.overridden_by is not None:
        raise NothingToOverride()
    dissent = task.status == TaskStatus.DONE and task.outcome == OpinionOutcome.DISAGREE
    escalated = (
        task.status == TaskStatus.OPEN
        and task.due_on is not None
        and move.today > task.due_on
        and move.chain.missing_opinion is MissingOpinion.ESCALATION
    )
    if not (dissent or escalated):
        raise NothingToOverride()
    move.reason = body.reason
    move.details = {
        "task_id": str(task.id),
        "department": task.department,
        "department_name": task.name,
        "overridden": "disagreement" if dissent else "missing_opinion",
    }


async def _apply_override(keeper: ChainKeeper, move: Move, recorder: MoveRecorder) -> None:
    assert move.task is not None
    values: dict[str, Any] = {
        "overridden_by": move.principal.subject,
        "override_reason": move.reason,
        "overridden_at": move.now,
    }
    if move.task.status == TaskStatus.OPEN:
        values |= {"status": TaskStatus.DONE.value, "outcome": "missing", "completed_at": move.now}
    await keeper.tasks.change(move.task.id, values, only_if_open=False)


HANDLERS: dict[Action, Handler] = {
    Action.CLAIM_TASK: Handler(_validate_claim, _apply_claim),
    Action.RETURN_TASK: Handler(_validate_return, _apply_return),
    Action.TRANSFER_TASK: Handler(_validate_transfer, _apply_transfer),
    Action.GIVE_OPINION: Handler(_validate_opinion, _apply_opinion),
    Action.OVERRIDE_OPINION: Handler(_validate_override, _apply_override),
}
assert HANDLERS.keys() == TASK_MOVES.keys()


class TaskMoves:
    """Runs the moves of a review chain."""

    def __init__(self, session: AsyncSession, outbox: OutboxWriter, today: date) -> None:
        self.session = session
        self.keeper = ChainKeeper(session, outbox)
        self.today = today

    async def tasks_of(self, application: Application) -> tuple[list[ReviewTask], str | None]:
        """A case's tasks and its current step."""
        tasks = await self.keeper.tasks.for_application(application.id)
        current = current_step([facts_of(t) for t in tasks])
        key = next((t.step_key for t in tasks if current and t.id == current.id), None)
        return tasks, key

    async def move(
        self,
        action: Action,
        *,
        principal: Principal,
        application: Application,
        task_id: uuid.UUID | None,
        body: BaseModel | None,
    ) -> ReviewTask:
        """Take a move: the table's rule, the handler's checks, then its writes and audit entry."""
        rule = RULES[action]
        if principal.role not in rule.roles:
            raise Forbidden(
                f"「{action.value}」仅限以下角色办理：{'、'.join(sorted(r.value for r in rule.roles))}"
            )
        current = ApplicationState(application.state)
        if current not in rule.from_states:
            raise IllegalTransition(
                f"申请当前状态为「{STATE_LABELS[current]}」，不能执行「{action.value}」",
                current_state=current.value,
                allowed_from=sorted(s.value for s in rule.from_states),
            )
        chain = await chain_for(self.session, application)
        if chain is None:
            raise TaskNotFound("该事项未设置审查环节")
        move = Move(
            principal=principal,
            application=application,
            chain=chain,
            tasks=await self.keeper.tasks.for_application(application.id),
            today=self.today,
            now=datetime.now(UTC),
        )
        if task_id is not None:
            move.task = _task(move, task_id)
        handler = HANDLERS[action]
        await handler.validate(self.keeper, move, body)
        repository = ApplicationRepository(self.session)
        if not await repository.update_state(
            application.id,
            expected_version=application.row_version,
            values={"updated_at": move.now},
        ):
            raise ConcurrentModification("申请已被他人同时处理，本次操作未生效")
        seq, last_hash = await repository.chain_end(application.id)
        recorder = MoveRecorder(self.keeper, application, current, seq + 1, last_hash, move.now)
        await handler.apply(self.keeper, move, recorder)
        await recorder.record(
            action.value,
            rule.event,
            move.details,
            actor=(principal.subject, principal.role.value),
            reason=move.reason,
        )
        assert move.task is not None
        changed = await self.keeper.tasks.for_application(application.id)
        return next(t for t in changed if t.id == move.task.id)
