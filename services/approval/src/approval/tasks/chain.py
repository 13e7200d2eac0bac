"""An item's review chain as its guide declares it, and the pure rules of moving through it.

A chain is 受理 → review steps (初审, 复审, …) → 审批: the acceptance step is the existing ``accept``
action, each review step is a recorded review (``review``, 审查意见), the last step is the decision
(``approve`` / ``deny``). Consulted departments (征求意见, 并联审批) give their opinions in parallel
from acceptance on, each before its own due date inside the decision limit.

The functions here decide, from the tasks of a case, which step is current, where a case may be
returned to and whether a decision may be taken; the service persists what they decide, and the
property tests (tests/unit/test_chain_rules.py) drive them through every sequence of moves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govshared.auth import Role


class StepKind(StrEnum):
    """What a step of the chain is."""

    ACCEPT = "accept"  # 受理: the accept action
    REVIEW = "review"  # 初审、复审…: a recorded review (审查意见)
    DECIDE = "decide"  # 审批: approve or deny


class MissingOpinion(StrEnum):
    """What an opinion not given by its due date counts as (a catalogue setting)."""

    DEEMED_AGREEMENT = "deemed_agreement"  # 逾期未回复视为同意
    ESCALATION = "escalation"  # 逾期未回复报本级人民政府负责人决定


class OpinionOutcome(StrEnum):
    """A consulted department's opinion (会签意见)."""

    AGREE = "agree"  # 同意
    DISAGREE = "disagree"  # 不同意（须说明理由）
    CONDITIONAL = "conditional"  # 附条件同意（须列明条件）


STEP_ROLES = {
    StepKind.ACCEPT: frozenset({Role.ACCEPTOR}),
    StepKind.REVIEW: frozenset({Role.REVIEWER, Role.APPROVER}),
    StepKind.DECIDE: frozenset({Role.APPROVER}),
}
OPINION_ROLES = frozenset({Role.REVIEWER, Role.APPROVER, Role.HEAD})
DEPARTMENT_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{1,31}$"


class ChainStep(BaseModel):
    """One internal step (环节) and who acts in it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["first_review"])
    name: str = Field(min_length=2, max_length=20, examples=["初审"])
    kind: StepKind
    role: Role
    department: str | None = Field(default=None, pattern=DEPARTMENT_PATTERN)


class Consultation(BaseModel):
    """A department whose opinion the item needs (征求意见), with its working days to answer."""

    model_config = ConfigDict(extra="forbid")

    department: str = Field(pattern=DEPARTMENT_PATTERN, examples=["SHGA"])
    name: str = Field(min_length=2, max_length=60, examples=["上海市公安局"])
    working_days: int = Field(ge=1, le=45, description="答复期限（工作日，自受理次日起算）")
    role: Role = Role.REVIEWER


class ReviewChain(BaseModel):
    """The steps of an item's internal review and its parallel consultations."""

    model_config = ConfigDict(extra="forbid")

    steps: list[ChainStep] = Field(min_length=3, max_length=10)
    consultations: list[Consultation] = Field(default_factory=list, max_length=10)
    missing_opinion: MissingOpinion = MissingOpinion.DEEMED_AGREEMENT

    @model_validator(mode="after")
    def _shape(self) -> ReviewChain:
        """受理 first, 审批 last, reviews between; each step's role one that may take its action."""
        kinds = [s.kind for s in self.steps]
        if kinds[0] is not StepKind.ACCEPT or kinds[-1] is not StepKind.DECIDE:
            raise ValueError("审查环节须以受理（accept）开始、以审批（decide）结束")
        if any(k is not StepKind.REVIEW for k in kinds[1:-1]):
            raise ValueError("受理与审批之间只能是审查环节（review）")
        if len(kinds) < 3:
            # A decision is taken on a reviewed case (审查 before 决定, Art. 34): with no review
            # step, an accepted case could be neither reviewed nor decided.
            raise ValueError("受理与审批之间至少须有一个审查环节（review）")
        for step in self.steps:
            if step.role not in STEP_ROLES[step.kind]:
                allowed = "、".join(sorted(r.value for r in STEP_ROLES[step.kind]))
                raise ValueError(f"环节「{step.name}」的角色须为 {allowed}")
        if len({s.key for s in self.steps}) != len(self.steps):
            raise ValueError("环节 key 不得重复")
        departments = [c.department for c in self.consultations]
        if len(set(departments)) != len(departments):
            raise ValueError("征求意见的部门不得重复")
        for consultation in self.consultations:
            if consultation.role not in OPINION_ROLES:
                raise ValueError(f"部门「{consultation.name}」答复人员的角色须为审查、审批或负责人")
        return self

    def index_of(self, key: str) -> int | None:
        """The position of a step by its key."""
        return next((i for i, s in enumerate(self.steps) if s.key == key), None)


class TaskKind(StrEnum):
    """A step of the chain, or a department's opinion."""

    STEP = "step"
    OPINION = "opinion"


class TaskStatus(StrEnum):
    """Where a task stands."""

    OPEN = "open"  # waiting (assigned to someone, or open to the role)
    DONE = "done"
    RETURNED = "returned"  # 退回: closed, an earlier step reopened
    CANCELLED = "cancelled"  # the case ended (withdrawn) before it


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What the rules read of a task."""

    id: uuid.UUID
    kind: TaskKind
    step_index: int
    status: TaskStatus
    department: str | None = None
    due_on: date | None = None
    outcome: str | None = None
    overridden: bool = False
    completed_by: str | None = None


def current_step(tasks: Sequence[TaskFacts]) -> TaskFacts | None:
    """The open step task: a case is at one step at a time."""
    return next((t for t in tasks if t.kind is TaskKind.STEP and t.status is TaskStatus.OPEN), None)


def return_targets(chain: ReviewChain, current: TaskFacts) -> list[int]:
    """The steps a case at ``current`` may be returned to: an earlier review step (受理 is a legal
    act of its own, undone only by the law's means, never by 退回)."""
    return [i for i in range(1, current.step_index) if chain.steps[i].kind is StepKind.REVIEW]


def last_completer(tasks: Sequence[TaskFacts], step_index: int) -> str | None:
    """Who completed a step last (a case returned to that step goes back to them)."""
    done = [
        t
        for t in tasks
        if t.kind is TaskKind.STEP and t.step_index == step_index and t.status is TaskStatus.DONE
    ]
    return done[-1].completed_by if done else None


@dataclass(frozen=True, slots=True)
class DecisionCheck:
    """Whether a decision may be taken now, and why not."""

    at_decision_step: bool
    pending: list[TaskFacts]  # opinions not given and not yet due: the decision waits
    deemed: list[TaskFacts]  # overdue, deemed agreement by the catalogue's rule
    escalated: list[TaskFacts]  # overdue, to be decided by the government head
    dissent: list[TaskFacts]  # disagreeing opinions not overridden

    def blocks(self, *, approving: bool) -> bool:
        """True when the decision cannot be taken."""
        return (
            not self.at_decision_step
            or bool(self.pending)
            or bool(self.escalated)
            or (approving and bool(self.dissent))
        )


def decision_check(chain: ReviewChain, tasks: Sequence[TaskFacts], today: date) -> DecisionCheck:
    """Where a case stands against its chain: at the decision step, with every opinion in (or
    past its due date, counted by the catalogue's rule)?"""
    step = current_step(tasks)
    at_decision = step is not None and chain.steps[step.step_index].kind is StepKind.DECIDE
    pending, deemed, escalated, dissent = [], [], [], []
    for task in tasks:
        if task.kind is not TaskKind.OPINION or task.status is TaskStatus.CANCELLED:
            continue
        if task.status is TaskStatus.OPEN:
            if task.overridden:
                continue
            if task.due_on is None or today <= task.due_on:
                pending.append(task)
            elif chain.missing_opinion is MissingOpinion.DEEMED_AGREEMENT:
                deemed.append(task)
            else:
                escalated.append(task)
        elif task.outcome == OpinionOutcome.DISAGREE and not task.overridden:
            dissent.append(task)
    return DecisionCheck(at_decision, pending, deemed, escalated, dissent)
