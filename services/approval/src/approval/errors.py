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


class DeemedAccepted(Conflict):
    """Art. 32: the acceptance period ran out, so the application is accepted by law."""

    code = "deemed_accepted"
    title = "受理期限已届满，申请依法自收到申请材料之日起视为受理，不能再受理、不予受理或要求补正"
    title_en = (
        "The acceptance period has run out: the application is accepted by law (Art. 32) and can "
        "no longer be accepted, refused or sent back for supplement"
    )


class MaterialsIncomplete(Conflict):
    """No acceptance while required materials are missing, unless staff decide 容缺受理."""

    code = "materials_incomplete"
    title = (
        "申请材料不齐全，不能受理；请一次性告知补正，或者作出容缺受理决定并列明缺少的材料和补交期限"
    )
    title_en = (
        "Required materials are missing: ask for a supplement, or accept with tolerated missing "
        "materials naming them and the date to deliver them"
    )


class ReviewRequired(Conflict):
    """No decision without a recorded review (审查意见)."""

    code = "review_required"
    title = "尚无审查意见，不能作出许可决定"
    title_en = "A decision needs at least one recorded review"


class ConcurrentModification(Conflict):
    code = "concurrent_modification"
    title = "申请已被他人同时处理，请刷新后重试"
    title_en = "The application was changed by someone else at the same time"


class AlreadyExtended(Conflict):
    code = "already_extended"
    title = "审批期限只能延长一次"
    title_en = "The decision period can be extended only once"


class NotInstantItem(Conflict):
    code = "not_instant_item"
    title = "该事项不是即办件，不能当场决定"
    title_en = "This item is not decided on the spot"


class SupplementNotInFirstRequest(DomainError):
    """一次性告知: a later 补正 request may not add what could have been asked the first time."""

    status = 422
    code = "supplement_items_not_in_first_request"
    title = "补正材料须一次性告知，不得增加首次未告知且申请人未改动的材料"
    title_en = (
        "A later supplement request may not add items that could have been asked the first time"
    )


class ActionInputInvalid(DomainError):
    status = 422
    code = "action_input_invalid"
    title = "办理操作缺少必要信息"
    title_en = "The action is missing required information"


class ItemVersionNotFound(NotFound):
    code = "item_version_not_found"
    title = "办事指南版本不存在"
    title_en = "Service guide version not found"


class ItemExists(Conflict):
    code = "item_exists"
    title = "事项编码已存在"
    title_en = "An item with this code already exists"


class NoDraftToPublish(Conflict):
    code = "no_draft_to_publish"
    title = "没有待发布的办事指南草稿"
    title_en = "There is no draft version to publish"


class FormInvalid(DomainError):
    status = 422
    code = "form_invalid"
    title = "申请表填写不符合办事指南要求"
    title_en = "The form does not match the item's service guide"


class CommitmentNotAllowed(DomainError):
    status = 422
    code = "commitment_not_allowed"
    title = "不能适用告知承诺方式办理"
    title_en = "The commitment route is not available for this application"


class CaseNotClosed(Conflict):
    code = "case_not_closed"
    title = "办件尚未办结，不能评价"
    title_en = "The case is not closed yet"


class AlreadyEvaluated(Conflict):
    code = "already_evaluated"
    title = "该办件已评价"
    title_en = "This case has already been rated"


class RemediationTaskNotFound(NotFound):
    code = "remediation_task_not_found"
    title = "整改任务不存在"
    title_en = "Remediation task not found"


class RemediationTaskAlreadyResolved(Conflict):
    """A resolved task keeps the resolution it was closed with: it is never overwritten."""

    code = "remediation_task_already_resolved"
    title = "整改任务已办结，不能再次办结或改写整改情况"
    title_en = "The remediation task is already resolved; its resolution cannot be replaced"


class MaterialNotInGuide(DomainError):
    status = 422
    code = "material_not_in_guide"
    title = "材料不属于该事项的办事指南"
    title_en = "The material is not one the item's service guide asks for"


class NoValidLicence(DomainError):
    status = 422
    code = "no_valid_licence"
    title = "未查到可替代该材料的有效电子证照"
    title_en = "No valid e-licence can replace this material"
