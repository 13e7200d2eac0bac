"""Approval's domain errors: each a stable code with Chinese and English titles."""

from __future__ import annotations

from govshared.problems import Conflict, DomainError, NotFound


class ItemNotFound(NotFound):
    code = "item_not_found"
    title = "事项不存在"
    title_en = "Approval item not found"


class ApplicationNotFound(NotFound):
    code = "application_not_found"
    title = "申请不存在"
    title_en = "Application not found"


class ApprovalCancelled(DomainError):
    """直接取消审批: the applicant needs no permit; the business licence suffices."""

    status = 422
    code = "approval_cancelled"
    title = "该事项已直接取消审批，无需申请许可，凭营业执照即可开展经营"
    title_en = "Approval cancelled: no permit needed, the business licence suffices"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "当前状态不允许此操作"
    title_en = "This action is not allowed in the application's current state"
