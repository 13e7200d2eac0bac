"""The application's state machine under the Administrative Licensing Law (docs/architecture.md).

Each action names the roles that may take it and the states it is legal from; anything else is a
409 problem naming the current state. The table is the single place these rules live; what each
action does beyond its rule (checks, clock effect, document, writes) is its handler's, registered
beside it: ``approval.handlers`` for the case's actions, ``approval.tasks.handlers`` for the review
chain's moves (one handler per action, no more: tests/unit/test_action_handlers.py).

Two rules of the law hold by the table's shape: a decision (approve, deny) is taken only from
``in_review``, which only a recorded review (审查意见) leads to, so no decision is made without one;
and resuming an Art. 45 pause returns the case to the state it was paused from (``accepted`` or
``in_review``), never further.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from govshared.applications import OPEN_STATES
from govshared.applications import ApplicationState as S
from govshared.auth import Role
from govshared.events import EventType


class Action(StrEnum):
    """What can happen to an application."""

    ACCEPT = "accept"  # 受理
    REJECT = "reject"  # 不予受理
    REQUEST_SUPPLEMENT = "request_supplement"  # 一次性告知补正
    SUPPLEMENT = "supplement"  # 申请人补正
    REVIEW = "review"  # 审查
    PAUSE = "pause"  # 特别程序（不计入期限）
    RESUME = "resume"
    EXTEND = "extend"  # 延长期限（负责人批准）
    APPROVE = "approve"  # 准予许可
    DENY = "deny"  # 不予许可
    WITHDRAW = "withdraw"  # 撤回申请
    INSTANT_DECISION = "instant_decision"  # 即办件当场受理并决定
    # Review chains and 并联审批 (approval/tasks): moves inside the case, its state unchanged.
    CLAIM_TASK = "claim_task"  # 签收任务
    RETURN_TASK = "return_task"  # 退回至前一审查环节
    TRANSFER_TASK = "transfer_task"  # 转办给同一区划、同一角色的其他工作人员
    GIVE_OPINION = "give_opinion"  # 被征求意见部门的会签意见
    OVERRIDE_OPINION = "override_opinion"  # 本级人民政府负责人对不同意或逾期意见作出决定


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may take an action, from which states, to which state, with which event."""

    roles: frozenset[Role]
    from_states: frozenset[S]
    to_state: S | None  # None: stays in the state it is in (or returns, see ``returns``)
    event: EventType
    # For an item handled jointly (Art. 42(2)) these roles take the action instead of ``roles``.
    joint_roles: frozenset[Role] | None = None
    # True: goes back to the state the case was in before it was paused.
    returns: bool = False

    def roles_for(self, *, joint: bool) -> frozenset[Role]:
        """The roles that may take the action on an item handled jointly or not."""
        return self.joint_roles if joint and self.joint_roles is not None else self.roles


_ACCEPTOR = frozenset({Role.ACCEPTOR})
_REVIEWERS = frozenset({Role.REVIEWER, Role.APPROVER})
_UNDER_REVIEW = frozenset({S.ACCEPTED, S.IN_REVIEW})
_TASK_ROLES = frozenset({Role.REVIEWER, Role.APPROVER, Role.HEAD})
# A chain's tasks live from acceptance to the decision; consulted departments answer during a pause.
_CHAIN_STATES = frozenset({S.ACCEPTED, S.IN_REVIEW, S.PAUSED})

RULES: dict[Action, Rule] = {
    Action.ACCEPT: Rule(
        _ACCEPTOR, frozenset({S.SUBMITTED}), S.ACCEPTED, EventType.APPLICATION_ACCEPTED
    ),
    Action.REJECT: Rule(
        _ACCEPTOR, frozenset({S.SUBMITTED}), S.REJECTED, EventType.APPLICATION_REJECTED
    ),
    Action.REQUEST_SUPPLEMENT: Rule(
        _ACCEPTOR,
        frozenset({S.SUBMITTED}),
        S.SUPPLEMENT_REQUESTED,
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
    ),
    Action.SUPPLEMENT: Rule(
        frozenset({Role.ENTERPRISE}),
        frozenset({S.SUPPLEMENT_REQUESTED}),
        S.SUBMITTED,
        EventType.APPLICATION_SUPPLEMENTED,
    ),
    Action.REVIEW: Rule(_REVIEWERS, _UNDER_REVIEW, S.IN_REVIEW, EventType.APPLICATION_REVIEWED),
    Action.PAUSE: Rule(_REVIEWERS, _UNDER_REVIEW, S.PAUSED, EventType.APPLICATION_PAUSED),
    Action.RESUME: Rule(
        _REVIEWERS, frozenset({S.PAUSED}), None, EventType.APPLICATION_RESUMED, returns=True
    ),
    # Art. 42(1): the authority's head; Art. 42(2): for an item handled jointly (统一办理、联合办理、
    # 集中办理), the head of the people's government at that level.
    Action.EXTEND: Rule(
        frozenset({Role.HEAD}),
        frozenset({S.ACCEPTED, S.IN_REVIEW, S.PAUSED}),
        None,
        EventType.APPLICATION_EXTENDED,
        joint_roles=frozenset({Role.GOVERNMENT_HEAD}),
    ),
    # Only from in_review: a decision needs at least one recorded review (审查意见).
    Action.APPROVE: Rule(
        frozenset({Role.APPROVER}),
        frozenset({S.IN_REVIEW}),
        S.APPROVED,
        EventType.APPLICATION_APPROVED,
    ),
    Action.DENY: Rule(
        frozenset({Role.APPROVER}), frozenset({S.IN_REVIEW}), S.DENIED, EventType.APPLICATION_DENIED
    ),
    Action.WITHDRAW: Rule(
        frozenset({Role.ENTERPRISE}), OPEN_STATES, S.WITHDRAWN, EventType.APPLICATION_WITHDRAWN
    ),
    Action.INSTANT_DECISION: Rule(
        frozenset({Role.ACCEPTOR, Role.APPROVER}),
        frozenset({S.SUBMITTED}),
        S.APPROVED,
        EventType.APPLICATION_APPROVED,
    ),
    # The moves of a review chain (approval/tasks/handlers.py). Whose task it is (its role,
    # department, assignee or their delegate) the handler checks on top of these roles.
    Action.CLAIM_TASK: Rule(_TASK_ROLES, _CHAIN_STATES, None, EventType.APPLICATION_TASK_CLAIMED),
    # Only from in_review: a case is returned to a review step that was completed.
    Action.RETURN_TASK: Rule(
        _REVIEWERS, frozenset({S.IN_REVIEW}), None, EventType.APPLICATION_TASK_RETURNED
    ),
    Action.TRANSFER_TASK: Rule(
        _TASK_ROLES, _CHAIN_STATES, None, EventType.APPLICATION_TASK_TRANSFERRED
    ),
    Action.GIVE_OPINION: Rule(
        _TASK_ROLES, _CHAIN_STATES, None, EventType.APPLICATION_OPINION_GIVEN
    ),
    Action.OVERRIDE_OPINION: Rule(
        frozenset({Role.GOVERNMENT_HEAD}),
        _CHAIN_STATES,
        None,
        EventType.APPLICATION_OPINION_OVERRIDDEN,
    ),
}


@dataclass(frozen=True, slots=True)
class TaskMove:
    """What a move of a review chain does beyond its rule; its handler does exactly this."""

    validation: str
    clock: str  # its effect on the statutory clocks
    document: str | None  # the notice or decision it issues
    notifies: str  # whose staff inbox its event reaches (notify/rules.py)


_NO_CLOCK = "none: the time counts in the decision limit (Art. 42; not an Art. 45 procedure)"
TASK_MOVES: dict[Action, TaskMove] = {
    Action.CLAIM_TASK: TaskMove(
        "the task is open and the caller's (role, department, jurisdiction)", _NO_CLOCK, None, "-"
    ),
    Action.RETURN_TASK: TaskMove(
        "the current step; to an earlier review step (never 受理); a reason",
        _NO_CLOCK,
        None,
        "who completed that step before, else its role",
    ),
    Action.TRANSFER_TASK: TaskMove(
        "the caller's open task; another active member of staff of the directory holding the "
        "task's role in its jurisdiction (and department)",
        _NO_CLOCK,
        None,
        "the new assignee",
    ),
    Action.GIVE_OPINION: TaskMove(
        "the caller's department was consulted and has not answered; reasons for a disagreement, "
        "conditions for a conditional agreement",
        _NO_CLOCK,
        None,
        "-",
    ),
    Action.OVERRIDE_OPINION: TaskMove(
        "a disagreement, or an overdue opinion under the escalation rule; a reason",
        _NO_CLOCK,
        None,
        "-",
    ),
}

STATE_LABELS: dict[S, str] = {
    S.SUBMITTED: "已提交，待受理",
    S.ACCEPTED: "已受理",
    S.REJECTED: "不予受理",
    S.SUPPLEMENT_REQUESTED: "待补正",
    S.IN_REVIEW: "审查中",
    S.PAUSED: "特别程序中（不计入审批期限）",
    S.APPROVED: "准予许可",
    S.DENIED: "不予许可",
    S.WITHDRAWN: "已撤回",
    S.FILED: "已备案",
}
