"""The built-in Chinese message templates, per event type and channel (the texts of record).

Built-in templates are version 1 unless ``_VERSIONS`` says otherwise; admins publish later versions
to the database (``notify.templates.service``).
"""

from __future__ import annotations

from govshared.events import EventType
from notify.models import Channel
from notify.templates.sandbox import TemplateSpec

_APP = "您的「{{ item_name }}」申请（办件编号 {{ application_no }}）"
# The notice or decision the transition decided, when there is one. Approval's worker seals it a
# moment later and ``document.issued`` then serves the file itself (version 2 of these texts; the
# first said it was sealed already, which is no longer true when this notice goes out).
_DOC = (
    "{% if details is defined and details.document is defined %}《{{ details.document.title }}》"
    "（文号 {{ details.document.number }}）加盖电子印章后将另行向您送达，"
    "届时可在办件进度中下载，并可在一网通办“文书查验”中核验真伪。{% endif %}"
)

# (event type, title, inbox/email body, SMS body); the SMS text is the one approved by the provider.
_APPLICATION_TEXTS: list[tuple[EventType, str, str, str | None]] = [
    (
        EventType.APPLICATION_SUBMITTED,
        "申请已提交：{{ item_name }}",
        _APP + "已提交，等待受理。",
        "您的{{ item_name }}申请{{ application_no }}已提交，等待受理。",
    ),
    (
        EventType.APPLICATION_ACCEPTED,
        "受理通知：{{ item_name }}",
        _APP + "已受理。{% if due_on %}法定办结期限为{{ due_on }}。{% endif %}" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}已受理。",
    ),
    (
        EventType.APPLICATION_DEEMED_ACCEPTED,
        "受理通知（视为受理）：{{ item_name }}",
        _APP + "因受理期限届满，依法自材料收到之日起视为受理。",
        "您的{{ item_name }}申请{{ application_no }}依法视为受理。",
    ),
    (
        EventType.APPLICATION_REJECTED,
        "不予受理通知：{{ item_name }}",
        _APP + "不予受理。理由：{{ reason or '详见不予受理通知书' }}。" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}不予受理，详情请登录一网通办查看。",
    ),
    (
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
        "补正材料通知：{{ item_name }}",
        _APP
        + "需要一次性补正材料：{{ reason or '详见补正材料通知书' }}。请在补正后重新提交。"
        + _DOC,
        "您的{{ item_name }}申请{{ application_no }}需补正材料，请登录一网通办查看。",
    ),
    (
        EventType.APPLICATION_SUPPLEMENTED,
        "补正材料已提交：{{ item_name }}",
        _APP + "的补正材料已提交，等待受理。",
        None,
    ),
    (
        EventType.APPLICATION_PAUSED,
        "特别程序告知：{{ item_name }}",
        _APP + "进入特别程序（{{ reason or '专家评审等' }}），所需时间不计入办理时限。"
        "{% if due_on %}预计于{{ due_on }}前完成。{% endif %}",
        "您的{{ item_name }}申请{{ application_no }}进入特别程序，所需时间不计入办理时限。",
    ),
    (
        EventType.APPLICATION_RESUMED,
        "恢复办理：{{ item_name }}",
        _APP + "特别程序已结束，恢复计算办理时限。",
        None,
    ),
    (
        EventType.APPLICATION_EXTENDED,
        "延期告知：{{ item_name }}",
        _APP + "经负责人批准延长办理期限{% if due_on %}至{{ due_on }}{% endif %}。"
        "理由：{{ reason or '详见延期告知书' }}。",
        "您的{{ item_name }}申请{{ application_no }}办理期限已依法延长。",
    ),
    (
        EventType.APPLICATION_APPROVED,
        "准予行政许可决定：{{ item_name }}",
        _APP + "已作出准予行政许可决定，许可证将依法在十个工作日内颁发。" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}已准予许可。",
    ),
    (
        EventType.APPLICATION_DENIED,
        "不予行政许可决定：{{ item_name }}",
        _APP + "经审查不予许可。理由：{{ reason or '详见不予行政许可决定书' }}。"
        "您享有依法申请行政复议或者提起行政诉讼的权利。" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}不予许可，详情请登录一网通办查看。",
    ),
    (
        EventType.APPLICATION_WITHDRAWN,
        "申请已撤回：{{ item_name }}",
        _APP + "已撤回。",
        None,
    ),
    (
        EventType.APPLICATION_FILED,
        "备案完成：{{ item_name }}",
        _APP + "已完成备案。",
        "您的{{ item_name }}备案{{ application_no }}已完成。",
    ),
    (
        EventType.BUNDLE_DECIDED,
        "一件事办理结果：{{ bundle_name }}",
        "{{ applicant_name }}：您申请的「{{ bundle_name }}」一件事{{ summary }}。"
        "{% for i in items %}\n{{ i.item_name }}（{{ i.application_no }}）：{{ i.state_label }}"
        "{% if i.reason %}，理由：{{ i.reason }}{% endif %}{% endfor %}",
        "您申请的{{ bundle_name }}一件事已全部办结，请登录一网通办查看结果。",
    ),
]

# A sealed document served with a notice: where to download it (with the holder's own login) and
# where anyone verifies it.
_LINKS = (
    "\n下载：{{ download_url }}（登录一网通办后下载）"
    "\n核验：{{ document.verify_url }}（文件 SHA-256：{{ document.pdf_sha256 }}）"
)
# The certificate of a licence event, when license sealed one (version 2 of these templates).
_CERTIFICATE = (
    "{% if document is defined and document %}"
    "\n《{{ document.title }}》（证书编号 {{ document.number }}）已加盖电子印章。"
    + _LINKS
    + "{% endif %}"
)
# Email only: the PDF travels with the message when fan-out decided it would (see notify.documents).
_ATTACHED = (
    "{% if document_attached is defined and document_attached %}"
    "\n\n附件：{{ document_filename }}（加盖电子印章的 PDF 文件，与下载的文件相同）。{% endif %}"
)

# The acts that suspend or end a licence: what the law requires each notice to say.
_REMEDIES = "您享有依法申请行政复议或者提起行政诉讼的权利。"
_HEARING = (
    "作出处罚决定前，本机关已于{{ rights_notified_on }}告知您拟作出的处罚及其事实、理由、依据和"
    "陈述、申辩、要求听证的权利（《行政处罚法》第四十四条、第六十三条）"
    "{% if hearing == 'held' %}，并已依您的要求举行听证{% elif hearing == 'waived' %}，"
    "您已明确放弃听证{% else %}，您未在告知后五日内要求听证{% endif %}。"
)
_CANCELLED = "{% if cancelled_on %}该行政许可已于{{ cancelled_on }}依法注销（《行政许可法》第七十条）。{% endif %}"

_DOCUMENT_TEXTS: list[tuple[EventType, str, str, str | None]] = [
    (
        EventType.DOCUMENT_ISSUED,
        "文书送达：《{{ document.title }}》",
        "{{ applicant_name }}：" + _APP + "的《{{ document.title }}》（文号 {{ document.number }}）"
        "已加盖电子印章，现依法向您送达。" + _LINKS,
        "您的{{ item_name }}申请{{ application_no }}的{{ document_title }}已送达，"
        "请登录一网通办查看下载。",
    ),
]

_LICENCE_TEXTS: list[tuple[EventType, str, str, str | None]] = [
    (
        EventType.LICENCE_ISSUED,
        "许可证已颁发：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已颁发"
        "{% if valid_until %}，有效期至{{ valid_until }}{% endif %}。" + _CERTIFICATE,
        "您的{{ licence_type }}{{ licence_no }}已颁发。",
    ),
    (
        EventType.LICENCE_CHANGED,
        "许可证已变更：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已变更。"
        "{% if legal_basis %}本次变更由本机关依据{{ legal_basis }}作出（《行政许可法》第八条）。"
        "理由：{{ reason }}。补偿：{{ compensation_note }}。"
        + _REMEDIES
        + "{% endif %}"
        + _CERTIFICATE,
        None,
    ),
    (
        EventType.LICENCE_RENEWED,
        "许可证已延续：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已延续"
        "{% if valid_until %}至{{ valid_until }}{% endif %}。" + _CERTIFICATE,
        None,
    ),
    (
        EventType.LICENCE_PENALTY_NOTIFIED,
        "行政处罚事先告知：{{ licence_type }}",
        "{{ holder_name }}：本机关拟依据{{ legal_basis }}，"
        "{% if intended_penalty == 'suspension' %}暂扣{% else %}吊销{% endif %}"
        "您的「{{ licence_type }}」（编号 {{ licence_no }}）。事实和理由：{{ reason }}。"
        "根据《行政处罚法》第四十四条、第六十三条、第六十四条，您有权进行陈述和申辩，"
        "并有权要求听证；要求听证的，请于{{ hearing_request_deadline }}前提出。"
        "逾期未提出的，视为放弃听证。",
        "您的{{ licence_type }}{{ licence_no }}拟被行政处罚，"
        "您有权陈述申辩并于{{ hearing_request_deadline }}前要求听证，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_SUSPENDED,
        "暂扣许可证件决定：{{ licence_type }}",
        "{{ holder_name }}：本机关依据{{ legal_basis }}作出行政处罚决定（{{ penalty_decision_no }}），"
        "于{{ act_on }}暂扣您的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "{% if suspended_until %}至{{ suspended_until }}{% endif %}，暂扣期间不得从事许可事项。"
        "理由：{{ reason }}。" + _HEARING + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被依法暂扣，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_REVOKED,
        "撤销行政许可决定：{{ licence_type }}",
        "{{ holder_name }}：本机关依据{{ legal_basis }}（《行政许可法》第六十九条），"
        "于{{ act_on }}撤销您的「{{ licence_type }}」（编号 {{ licence_no }}）。"
        "理由：{{ reason }}。{% if compensation_note %}补偿：{{ compensation_note }}。{% endif %}"
        + _CANCELLED
        + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被撤销，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_WITHDRAWN,
        "撤回行政许可决定：{{ licence_type }}",
        "{{ holder_name }}：因{{ reason }}，本机关依据{{ legal_basis }}（《行政许可法》第八条），"
        "于{{ act_on }}撤回您的「{{ licence_type }}」（编号 {{ licence_no }}）。"
        "由此给您造成财产损失的，依法给予补偿：{{ compensation_note }}。" + _CANCELLED + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被依法撤回，补偿事项请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_PENALTY_REVOKED,
        "吊销许可证件决定：{{ licence_type }}",
        "{{ holder_name }}：本机关依据{{ legal_basis }}作出行政处罚决定（{{ penalty_decision_no }}），"
        "于{{ act_on }}吊销您的「{{ licence_type }}」（编号 {{ licence_no }}）。"
        "理由：{{ reason }}。" + _HEARING + _CANCELLED + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被依法吊销，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_CANCELLED,
        "行政许可注销通知：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已于{{ cancelled_on }}"
        "依法注销（《行政许可法》第七十条）。{{ reason }}。",
        "您的{{ licence_type }}{{ licence_no }}已依法注销。",
    ),
    (
        EventType.LICENCE_EXPIRED,
        "许可证已到期：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已到期失效。"
        "{% if reason %}{{ reason }}。{% endif %}" + _CANCELLED,
        None,
    ),
    (
        EventType.LICENCE_RECTIFICATION_ORDERED,
        "责令限期整改通知：{{ licence_type }}",
        "{{ holder_name }}：您以告知承诺方式取得的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "经核查：{{ reason }}。请于{{ rectify_by }}前整改到位；逾期不整改或者整改后仍不符合条件的，"
        "将依法撤销该行政许可并记入信用记录（国办发〔2020〕42号）。",
        "您的{{ licence_type }}{{ licence_no }}须于{{ rectify_by }}前整改，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_INSPECTION_SCHEDULED,
        "双随机抽查通知：{{ licence_type }}",
        "{{ holder_name }}：经“双随机、一公开”随机抽取，本机关将对您持有的「{{ licence_type }}」"
        "（编号 {{ licence_no }}）开展事中事后监管检查，检查将于{{ inspection_due_on }}前完成。"
        "检查人员将出示执法证件；检查人员与您有利害关系的，您可以申请回避。",
        "您的{{ licence_type }}{{ licence_no }}被抽中双随机检查，"
        "将于{{ inspection_due_on }}前完成，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_INSPECTED,
        "双随机抽查结果：{{ licence_type }}",
        "{{ holder_name }}：本机关对您持有的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "的抽查结果为：{{ reason }}。"
        "{% if rectify_by %}请于{{ rectify_by }}前整改到位，本机关将在期限届满后复查；"
        "逾期未改正的，将依法处理并记入信用记录。{% endif %}"
        "抽查结果将在二十个工作日内通过一网通办向社会公示。",
        "您的{{ licence_type }}{{ licence_no }}双随机抽查结果已出，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_RECTIFICATION_MISSED,
        "逾期未整改通知：{{ licence_type }}",
        "{{ holder_name }}：本机关对您持有的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "双随机抽查发现问题并责令限期整改，您{{ reason }}。"
        "拟作出行政处罚的，本机关将另行告知拟处罚的事实、理由、依据及您依法享有的陈述、申辩和"
        "要求听证的权利（《行政处罚法》第四十四条）。",
        "您的{{ licence_type }}{{ licence_no }}逾期未整改，已记入严重失信记录，"
        "详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_RENEWAL_DUE,
        "许可证延续提醒：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）将于{{ valid_until }}到期，"
        "请至少在到期前三十日申请延续。",
        "您的{{ licence_type }}{{ licence_no }}将于{{ valid_until }}到期，请及时申请延续。",
    ),
]

# Staff notices: the jurisdiction's staff see new work and clock warnings in their inbox.
_STAFF_TEXTS: list[tuple[EventType, str, str]] = [
    (
        EventType.APPLICATION_SUBMITTED,
        "新申请待受理：{{ item_name }}",
        "{{ applicant_name }}提交了「{{ item_name }}」申请（办件编号 {{ application_no }}），"
        "请在五个工作日内受理、不予受理或一次性告知补正。",
    ),
    (
        EventType.APPLICATION_SUPPLEMENTED,
        "补正材料待审核：{{ item_name }}",
        "{{ applicant_name }}已提交「{{ item_name }}」申请（办件编号 {{ application_no }}）的补正材料。",
    ),
    (
        EventType.APPLICATION_CLOCK_WARNING,
        "办理时限临近（黄灯）：{{ item_name }}",
        "「{{ item_name }}」办件 {{ application_no }} 即将到期"
        "{% if due_on %}（{{ due_on }}）{% endif %}，请尽快办理。",
    ),
    (
        EventType.APPLICATION_CLOCK_OVERDUE,
        "办理超期（红灯）：{{ item_name }}",
        "「{{ item_name }}」办件 {{ application_no }} 已超过办理时限"
        "{% if due_on %}（{{ due_on }}）{% endif %}，请立即处理。",
    ),
    (
        EventType.LICENCE_RECTIFICATION_MISSED,
        "逾期未整改，待依法处理：{{ licence_type }}",
        "{{ holder_name }}（{{ holder_uscc }}）持有的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "未在{{ rectify_by }}前整改到位，已记入严重失信记录。{{ reason }}。"
        "请在抽查处理建议中核实，并依法启动相应的证照处理程序。",
    ),
    (
        EventType.APPLICATION_TASK_OPENED,
        "新任务待办理：{{ item_name }}（{{ details.step_name }}）",
        "「{{ item_name }}」办件 {{ application_no }}（{{ applicant_name }}）已进入"
        "「{{ details.step_name }}」环节，请签收办理。",
    ),
    (
        EventType.APPLICATION_TASK_RETURNED,
        "办件退回：{{ item_name }}（退回至{{ details.to_step_name }}）",
        "「{{ item_name }}」办件 {{ application_no }} 被退回至「{{ details.to_step_name }}」环节。"
        "{% if reason %}退回理由：{{ reason }}。{% endif %}请重新办理。",
    ),
    (
        EventType.APPLICATION_TASK_TRANSFERRED,
        "转办任务：{{ item_name }}（{{ details.step_name }}）",
        "「{{ item_name }}」办件 {{ application_no }} 的「{{ details.step_name }}」任务已转办给您"
        "{% if reason %}，说明：{{ reason }}{% endif %}。",
    ),
    (
        EventType.APPLICATION_OPINION_REQUESTED,
        "征求意见：{{ item_name }}",
        "「{{ item_name }}」办件 {{ application_no }}（{{ applicant_name }}）依法联合办理，"
        "请{{ details.department_name }}{% if due_on %}于{{ due_on }}前{% endif %}出具会签意见（同意、不同意并说明理由或附条件同意）。",
    ),
    (
        EventType.APPLICATION_OPINION_ESCALATED,
        "逾期未答复，待您决定：{{ item_name }}",
        "「{{ item_name }}」办件 {{ application_no }}（{{ applicant_name }}）依法联合办理，"
        "{{ details.department_name }}未在{% if due_on %}{{ due_on }}{% else %}答复期限{% endif %}前出具会签意见。"
        "依该事项规定，须由本级人民政府负责人作出决定后方可审批，请及时决定。",
    ),
]

STAFF_CHANNEL = "staff_inbox"

# Built-in texts changed since version 1 (inbox, email and webhook; SMS texts are unchanged):
# version 2 of the licence texts names and links the sealed certificate (issue 7).
_VERSIONS: dict[EventType, int] = {
    EventType.APPLICATION_ACCEPTED: 2,
    EventType.APPLICATION_REJECTED: 2,
    EventType.APPLICATION_SUPPLEMENT_REQUESTED: 2,
    EventType.APPLICATION_APPROVED: 2,
    EventType.APPLICATION_DENIED: 2,
    EventType.LICENCE_ISSUED: 2,
    EventType.LICENCE_CHANGED: 3,  # version 3: an Art. 8 change names its basis and compensation
    EventType.LICENCE_RENEWED: 2,
    # version 2: each act that suspends or ends a licence is its own notice (issue 14)
    EventType.LICENCE_SUSPENDED: 2,
    EventType.LICENCE_REVOKED: 2,
    EventType.LICENCE_EXPIRED: 2,
}
# Event types that can serve a sealed document, whose email may carry it.
_SERVES_DOCUMENTS = frozenset(
    {
        EventType.DOCUMENT_ISSUED,
        EventType.LICENCE_ISSUED,
        EventType.LICENCE_CHANGED,
        EventType.LICENCE_RENEWED,
    }
)
# Provider template ids are unique per text: two event types named ``issued`` need their own.
_SMS_IDS: dict[EventType, str] = {
    EventType.DOCUMENT_ISSUED: "SMS_DOCUMENT_ISSUED",
    # 暂扣 is a penalty, no longer "暂停": a new text needs its own provider id.
    EventType.LICENCE_SUSPENDED: "SMS_SUSPENDED_V2",
}


def _builtins() -> dict[tuple[str, str], TemplateSpec]:
    specs: dict[tuple[str, str], TemplateSpec] = {}
    for event_type, title, body, sms in [*_APPLICATION_TEXTS, *_DOCUMENT_TEXTS, *_LICENCE_TEXTS]:
        key = str(event_type)
        version = _VERSIONS.get(event_type, 1)
        attached = _ATTACHED if event_type in _SERVES_DOCUMENTS else ""
        for channel in (Channel.INBOX, Channel.EMAIL, Channel.WEBHOOK):
            email_body = body + attached + "\n\n——一网通办（本邮件由系统自动发送，请勿直接回复）"
            specs[(key, channel)] = TemplateSpec(
                key, channel, version, title, email_body if channel is Channel.EMAIL else body
            )
        if sms is not None:
            sms_id = _SMS_IDS.get(event_type, "SMS_" + key.split(".")[-2].upper())
            specs[(key, Channel.SMS)] = TemplateSpec(key, Channel.SMS, 1, None, sms, sms_id)
    for event_type, title, body in _STAFF_TEXTS:
        specs[(str(event_type), STAFF_CHANNEL)] = TemplateSpec(
            str(event_type), Channel.INBOX, 1, title, body
        )
    return specs


BUILTIN_TEMPLATES: dict[tuple[str, str], TemplateSpec] = _builtins()
