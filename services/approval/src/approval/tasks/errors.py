"""Errors of the review chains: each a stable code with Chinese and English titles."""

from __future__ import annotations

from govshared.problems import Conflict, DomainError, NotFound


class TaskNotFound(NotFound):
    code = "task_not_found"
    title = "任务不存在"
    title_en = "Task not found"


class DelegationNotFound(NotFound):
    code = "delegation_not_found"
    title = "委托不存在"
    title_en = "Delegation not found"


class TaskClosed(Conflict):
    code = "task_closed"
    title = "该任务已办结、已退回或已取消"
    title_en = "The task is no longer open"


class TaskAssignedElsewhere(Conflict):
    code = "task_assigned_to_another"
    title = "该任务已由其他工作人员签收或转办给其他工作人员"
    title_en = "The task is assigned to another member of staff"


class ChainStepPending(Conflict):
    """The case is not at the step the action belongs to (no step of a chain is skipped)."""

    code = "chain_step_pending"
    title = "审查环节尚未依次办结，不能执行此操作"
    title_en = "The case is not at this step of its review chain"


class OpinionsPending(Conflict):
    """并联审批: the decision waits for every consulted department or its due date."""

    code = "opinions_pending"
    title = "被征求意见的部门尚未答复且答复期限未届满，暂不能作出决定"
    title_en = "Consulted departments have not answered and their due dates have not passed"


class OpinionEscalated(Conflict):
    code = "opinion_escalated"
    title = "有部门逾期未答复，须由本级人民政府负责人作出决定后方可审批"
    title_en = "An overdue opinion awaits the government head's decision"


class DissentUnresolved(Conflict):
    code = "dissent_unresolved"
    title = "有部门不同意且未经本级人民政府负责人决定，不能准予许可"
    title_en = "A department disagrees: deny citing it, or the government head overrides it first"


class OpinionAlreadyGiven(Conflict):
    code = "opinion_already_given"
    title = "本部门已就该申请出具意见"
    title_en = "This department has already given its opinion"


class NotConsulted(DomainError):
    status = 403
    code = "department_not_consulted"
    title = "该申请未征求本部门意见，或令牌未载明部门（department）"
    title_en = "This department was not consulted on the application (or the token has none)"


class NothingToOverride(Conflict):
    code = "nothing_to_override"
    title = "该意见无需负责人决定（非不同意意见，也非逾期未答复须报请决定的意见）"
    title_en = "Only a disagreement or an escalated overdue opinion can be overridden"


class MoveInvalid(DomainError):
    status = 422
    code = "task_move_invalid"
    title = "任务操作的参数不符合要求"
    title_en = "The task move's input is invalid"


class StaffUnknown(DomainError):
    """转办、委托 go only to a member of staff in the directory (approval/tasks/directory.py)."""

    status = 422
    code = "staff_not_in_directory"
    title = "转办或委托的对象不在工作人员名录中，或已停用"
    title_en = "The target of the transfer or delegation is not an active member of staff"


class StaffIneligible(DomainError):
    status = 422
    code = "staff_not_eligible"
    title = "转办或委托的对象须为同一区划、同一角色（征求意见任务还须同一部门）的工作人员"
    title_en = "The target must hold the task's role in its jurisdiction (and department)"
