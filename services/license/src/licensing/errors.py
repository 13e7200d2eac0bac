"""License's domain errors: each a stable code with Chinese and English titles."""

from __future__ import annotations

from govshared.problems import Conflict, DomainError, Forbidden, NotFound


class ReformItemNotFound(NotFound):
    code = "reform_item_not_found"
    title = "该事项不在证照分离改革事项目录中"
    title_en = "The item is not in the reform catalogue"


class ReformModeNotInForce(NotFound):
    code = "reform_mode_not_in_force"
    title = "该事项在指定日期和区划尚无生效的改革方式"
    title_en = "No reform mode of the item is in force at that date and jurisdiction"


class ReformItemExists(Conflict):
    code = "reform_item_exists"
    title = "改革事项已存在"
    title_en = "The reform item already exists"


class ReformVersionConflict(Conflict):
    code = "reform_version_conflict"
    title = "该事项在同一区划同一生效日期已有版本"
    title_en = "A version for this item, jurisdiction and effective date already exists"


class RetroactiveVersion(DomainError):
    status = 422
    code = "retroactive_version"
    title = "新版本的生效日期不得早于今天（历史版本不可修改）"
    title_en = "A new version cannot take effect in the past (history is never edited)"


class CommitmentTextRequired(DomainError):
    status = 422
    code = "commitment_text_required"
    title = "实行告知承诺的事项须公布承诺书文本"
    title_en = "Notification-commitment items need a published commitment text"


class LicenceNotFound(NotFound):
    code = "licence_not_found"
    title = "证照不存在"
    title_en = "Licence not found"


class LicenceNotActive(Conflict):
    code = "licence_not_active"
    title = "证照当前状态不允许此操作"
    title_en = "The licence's current status does not allow this action"


class LicenceChangedMeanwhile(LicenceNotActive):
    """The version read was changed by another request before this one wrote it (same code: the
    caller reads the licence again; the event consumer applies the event again itself)."""

    title = "证照已被并发修改，请刷新后重试"
    title_en = "The licence was changed meanwhile; read it again and retry"


class RenewalTooLate(Conflict):
    code = "renewal_too_late"
    title = "延续申请应当在有效期届满三十日前提出（《行政许可法》第五十条）"
    title_en = "Renewal must be applied for no later than 30 days before expiry (Art. 50)"


class RenewalNotNeeded(Conflict):
    code = "renewal_not_needed"
    title = "该证照长期有效，无需延续"
    title_en = "The licence has no expiry date"


class RenewalNotPending(Conflict):
    code = "renewal_not_pending"
    title = "该证照没有待决定的延续申请"
    title_en = "The licence has no pending renewal"


class RenewalDecidedInApproval(Conflict):
    code = "renewal_decided_in_approval"
    title = "该延续申请经审批办理，由审批作出准予或不予延续的决定"
    title_en = "This renewal was filed as an approval application and is decided there"


class VerificationTaskNotFound(NotFound):
    code = "verification_task_not_found"
    title = "核查任务不存在"
    title_en = "Verification task not found"


class VerificationAlreadyDecided(Conflict):
    code = "verification_already_decided"
    title = "核查任务已有结论"
    title_en = "The verification task already has a result"


class NotYourEnterprise(Forbidden):
    code = "not_your_enterprise"
    title = "只能查询本企业的信息"
    title_en = "An enterprise may only read its own data"


class OutsideJurisdiction(Forbidden):
    code = "outside_jurisdiction"
    title = "不在本人所属行政区划的管辖范围内"
    title_en = "Outside the caller's jurisdiction"


class RevocationNeedsDecider(Forbidden):
    code = "revocation_needs_decider"
    title = "核查结论将撤销行政许可，须由审批负责人（approver、head）作出"
    title_en = "A verification result that revokes the licence is an approver's or head's decision"


class InvalidUscc(DomainError):
    status = 422
    code = "invalid_uscc"
    title = "统一社会信用代码无效"
    title_en = "Invalid unified social credit code"


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    title = "电子证照文件不存在"
    title_en = "Licence certificate not found"


class CertificateNotSealed(Conflict):
    code = "certificate_not_sealed_yet"
    title = "电子证照正在加盖电子印章，请稍后下载"
    title_en = "The certificate is being sealed; try again shortly"


class ChangeNeedsHolderApplication(Forbidden):
    code = "change_needs_holder_application"
    title = "许可事项变更须由被许可人申请（《行政许可法》第四十九条）"
    title_en = "A licence changes only on its holder's application (Art. 49)"


class HolderNameChangeNeedsApplication(Forbidden):
    code = "holder_name_change_needs_application"
    title = "被许可人名称变更只能依被许可人申请办理"
    title_en = "The holder's name changes only on the holder's application"


class HearingRightsNotRespected(Conflict):
    code = "hearing_rights_not_respected"
    title = "未依法告知当事人陈述、申辩和要求听证的权利或听证期限未满，不得作出处罚决定"
    title_en = (
        "The holder's right to a hearing has not been respected (行政处罚法 Arts. 44, 63, 64)"
    )


class PenaltyNoticeRequired(Conflict):
    code = "penalty_notice_required"
    title = "未经登记送达拟作出该处罚的行政处罚事先告知书，不得作出处罚决定"
    title_en = (
        "No notice of this intended penalty has been served through the register "
        "(行政处罚法 Art. 44)"
    )


class RectificationPeriodRunning(Conflict):
    code = "rectification_period_running"
    title = "整改期限尚未届满，期满后方可认定整改后仍不符合条件"
    title_en = "The rectification period has not ended yet"


class RectificationDeadlineInvalid(DomainError):
    status = 422
    code = "rectification_deadline_invalid"
    title = "责令限期整改须载明晚于今天的整改期限"
    title_en = "An order to rectify needs a deadline after today"


class InspectionPlanNotFound(NotFound):
    code = "inspection_plan_not_found"
    title = "抽查计划不存在"
    title_en = "Inspection plan not found"


class InspectionNotFound(NotFound):
    code = "inspection_not_found"
    title = "抽查任务不存在"
    title_en = "Inspection not found"


class PlanAlreadyDrawn(Conflict):
    code = "plan_already_drawn"
    title = "该抽查计划已经抽取，每个计划只抽取一次"
    title_en = "The plan has been drawn already (one draw per plan)"


class PlanNotDrawn(Conflict):
    code = "plan_not_drawn"
    title = "该抽查计划尚未抽取"
    title_en = "The plan has not been drawn yet"


class NotEnoughInspectors(Conflict):
    code = "not_enough_inspectors"
    title = "执法检查人员名录中无需回避的人员不足两名"
    title_en = "Fewer than two inspectors without a conflict with a drawn holder"


class InspectionAlreadyRecorded(Conflict):
    code = "inspection_already_recorded"
    title = "该抽查结果已经录入"
    title_en = "The inspection's result has been recorded already"


class EvidenceRequired(DomainError):
    status = 422
    code = "evidence_required"
    title = "录入抽查结果前应当上传检查证据材料"
    title_en = "Upload the inspection's evidence before recording its result"


class InspectorConflictExists(Conflict):
    code = "inspector_conflict_exists"
    title = "该检查人员与该市场主体的回避情形已登记"
    title_en = "The conflict is declared already"
