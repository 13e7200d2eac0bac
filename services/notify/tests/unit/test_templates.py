"""Templates: sandboxed, strict about missing variables, every built-in renders."""

from __future__ import annotations

from typing import Any

import pytest

from govshared.events import CloudEvent, EventType, parse_data
from govshared.testing import random_uscc
from notify.documents import DocumentLinks
from notify.errors import TemplateRenderFailed
from notify.models import Channel
from notify.rules import template_context
from notify.templates import BUILTIN_TEMPLATES, TemplateSpec, render, render_text, variables

from ..conftest import document_event, document_ref, licence_event

APPLICATION = {
    "item_name": "食盐定点批发企业审批",
    "application_no": "310000-20261128-ABCD1234",
    "applicant_name": "上海盐业示范有限公司",
    "reason": None,
    "due_on": None,
    # Every application event carries its details; a review chain's name the step and department.
    "details": {"step_name": "初审", "to_step_name": "初审", "department_name": "上海市公安局"},
}
LICENCE = {
    "holder_name": "上海盐业示范有限公司",
    "licence_type": "食盐定点批发许可证",
    "licence_no": "JY31000020260001",
    "valid_until": "2031年11月27日",
    "reason": None,
    # What every licence event carries about the act behind it (None on the others).
    "act_on": None,
    "legal_basis": None,
    "compensation_note": None,
    "penalty_decision_no": None,
    "rights_notified_on": None,
    "hearing": None,
    "suspended_until": None,
    "cancelled_on": None,
    "cancellation_ground": None,
    "rectify_by": None,
    "intended_penalty": None,
    "hearing_request_deadline": None,
}
# What an act that suspends or ends a licence tells the holder (its events always carry it).
ACT = {
    "reason": "违反食盐储存规定，情节严重",
    "act_on": "2026年12月6日",
    "legal_basis": "《食盐专营办法》第二十九条",
    "compensation_note": "对由此造成的财产损失依法给予补偿",
    "penalty_decision_no": "沪盐罚〔2026〕31号",
    "rights_notified_on": "2026年11月16日",
    "hearing": "waived",
    "cancelled_on": "2026年12月6日",
    "cancellation_ground": "penalty_revoked",
    "rectify_by": "2027年1月5日",
    "intended_penalty": "penalty_revocation",
    "hearing_request_deadline": "2026年11月23日",
}
ACT_EVENTS = {
    str(t)
    for t in (
        EventType.LICENCE_SUSPENDED,
        EventType.LICENCE_REVOKED,
        EventType.LICENCE_WITHDRAWN,
        EventType.LICENCE_PENALTY_REVOKED,
        EventType.LICENCE_CANCELLED,
        EventType.LICENCE_RECTIFICATION_ORDERED,
        EventType.LICENCE_PENALTY_NOTIFIED,
    )
}
# What a 双随机 inspection's events tell the holder (issue 20).
INSPECTION_EVENTS = {
    str(EventType.LICENCE_INSPECTION_SCHEDULED),
    str(EventType.LICENCE_INSPECTED),
    str(EventType.LICENCE_RECTIFICATION_MISSED),
}
INSPECTION = {
    "reason": "合格",
    "inspection_id": "5b0f3c1e-8a4e-4c53-9a52-2f2a6c1d7e10",
    "inspection_due_on": "2027年1月8日",
    "inspection_outcome": "compliant",
    "holder_uscc": "91350100M000100Y43",
    "rectify_by": "2027年1月20日",
}
LINKS = DocumentLinks(
    service_urls={"approval": "http://approval", "license": "http://license"},
    public_urls={"approval": "https://onestop.example.gov.cn"},
)


def context_of(envelope: dict[str, Any], links: DocumentLinks = LINKS) -> dict[str, Any]:
    """What fan-out gives the templates for an event as posted."""
    event = CloudEvent.model_validate(envelope)
    return template_context(event, parse_data(event), links)


DOCUMENT = context_of(document_event(random_uscc(), document_ref(b"%PDF-1.7 x")))


BUNDLE = {
    "bundle_name": "开办食盐定点生产批发企业",
    "applicant_name": "上海盐业示范有限公司",
    "summary": "全部事项已办结，部分事项未获许可",
    "items": [
        {
            "item_name": "食盐定点批发企业审批",
            "application_no": "310000-20261207-AAAA0002",
            "state_label": "不予许可",
            "reason": "仓储设施不符合食盐储存条件",
        }
    ],
}


def sample_context(event_type: str) -> dict[str, Any]:
    """Sample variables of an event type's templates."""
    if event_type == EventType.DOCUMENT_ISSUED:
        return DOCUMENT
    if event_type == EventType.BUNDLE_DECIDED:
        return BUNDLE
    if event_type in ACT_EVENTS:
        return {**LICENCE, **ACT}
    if event_type in INSPECTION_EVENTS:
        return {**LICENCE, **INSPECTION}
    return LICENCE if event_type.startswith("cn.gov.license.") else APPLICATION


def test_missing_variable_fails_visibly() -> None:
    with pytest.raises(TemplateRenderFailed) as caught:
        render_text(
            "您的「{{ item_name }}」申请（{{ application_no }}）已提交。", {"item_name": "x"}
        )
    assert "application_no" in str(caught.value.detail)


def test_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateRenderFailed):
        render_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_syntax_error_is_a_render_failure() -> None:
    with pytest.raises(TemplateRenderFailed):
        render_text("{% if %}", {})


@pytest.mark.parametrize("key", sorted(BUILTIN_TEMPLATES))
def test_every_builtin_template_renders(key: tuple[str, str]) -> None:
    spec = BUILTIN_TEMPLATES[key]
    rendered = render(spec, sample_context(spec.event_type))
    assert rendered.body
    assert "None" not in rendered.body
    if spec.channel is Channel.SMS:
        assert rendered.sms_template_id
        assert rendered.sms_params is not None
        assert set(rendered.sms_params) == set(variables(spec.body))


def test_sms_parameters_are_the_template_variables() -> None:
    spec = TemplateSpec(
        "t", Channel.SMS, 3, None, "您的{{ item_name }}申请{{ no }}已受理。", "SMS_X"
    )
    rendered = render(spec, {"item_name": "食品经营许可", "no": "A-1", "unused": "y"})
    assert rendered.sms_params == {"item_name": "食品经营许可", "no": "A-1"}
    assert rendered.body == "您的食品经营许可申请A-1已受理。"
    assert rendered.version == 3


def test_an_sms_variable_the_event_lacks_is_an_empty_parameter() -> None:
    # Optional on purpose: under an untaken if, tested with `is defined`, under |default.
    spec = TemplateSpec(
        "t",
        Channel.SMS,
        2,
        None,
        "您的{{ item_name }}申请已受理{% if download_url is defined %}，"
        "下载：{{ download_url }}{% endif %}{% if false %}{{ never }}{% endif %}。"
        "经办：{{ handler|default('窗口') }}{% if reason %}，{{ reason }}{% endif %}",
        "SMS_X",
    )
    rendered = render(spec, {"item_name": "食品经营许可", "reason": None})
    assert rendered.body == "您的食品经营许可申请已受理。经办：窗口"
    # The provider's approved template has a placeholder for each: every one is passed, and
    # one the event lacks (or leaves null) is empty, never "None".
    assert rendered.sms_params == {
        "item_name": "食品经营许可",
        "download_url": "",
        "never": "",
        "handler": "",
        "reason": "",
    }
    given = render(
        spec, {"item_name": "食品经营许可", "download_url": "https://x.cn/d", "reason": "补正"}
    )
    assert given.body == "您的食品经营许可申请已受理，下载：https://x.cn/d。经办：窗口，补正"
    assert given.sms_params == {
        "item_name": "食品经营许可",
        "download_url": "https://x.cn/d",
        "never": "",
        "handler": "",
        "reason": "补正",
    }


def test_critical_statutory_notices_have_sms_templates() -> None:
    for event_type in (
        EventType.APPLICATION_ACCEPTED,
        EventType.APPLICATION_REJECTED,
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
        EventType.APPLICATION_APPROVED,
        EventType.APPLICATION_DENIED,
        EventType.DOCUMENT_ISSUED,
        EventType.LICENCE_ISSUED,
        EventType.LICENCE_REVOKED,
    ):
        assert (str(event_type), Channel.SMS) in BUILTIN_TEMPLATES


def test_each_sms_template_has_its_own_provider_id() -> None:
    ids = [s.sms_template_id for s in BUILTIN_TEMPLATES.values() if s.channel is Channel.SMS]
    assert len(ids) == len(set(ids))
    sms = render(BUILTIN_TEMPLATES[(str(EventType.DOCUMENT_ISSUED), Channel.SMS)], DOCUMENT)
    assert sms.sms_template_id == "SMS_DOCUMENT_ISSUED"
    assert sms.body == (
        "您的食盐定点批发企业审批申请" + DOCUMENT["application_no"] + "的受理通知书已送达，"
        "请登录一网通办查看下载。"
    )
    assert set(sms.sms_params or {}) == {"item_name", "application_no", "document_title"}


def test_a_served_document_is_named_with_its_links_and_the_email_names_its_attachment() -> None:
    key = str(EventType.DOCUMENT_ISSUED)
    inbox = render(BUILTIN_TEMPLATES[(key, Channel.INBOX)], DOCUMENT)
    document = DOCUMENT["document"]
    assert inbox.title == "文书送达：《受理通知书》"
    assert "《受理通知书》（文号 310000〔2026〕受字第3A9F01C2号）已加盖电子印章" in inbox.body
    assert "下载：https://onestop.example.gov.cn" + document["download_path"] in inbox.body
    assert "核验：" + document["verify_url"] in inbox.body
    assert document["pdf_sha256"] in inbox.body
    assert "附件" not in inbox.body
    email = render(BUILTIN_TEMPLATES[(key, Channel.EMAIL)], DOCUMENT)
    assert "附件：310000〔2026〕受字第3A9F01C2号.pdf" in email.body
    # When the PDF cannot travel (too large, or an unknown issuer) the email does not promise it.
    unattached = context_of(
        document_event(random_uscc(), document_ref(b"%PDF-1.7 x")),
        DocumentLinks(service_urls=LINKS.service_urls, max_attachment_bytes=5),
    )
    assert "附件" not in render(BUILTIN_TEMPLATES[(key, Channel.EMAIL)], unattached).body


def test_licence_texts_name_the_certificate_when_there_is_one() -> None:
    key = str(EventType.LICENCE_ISSUED)
    spec = BUILTIN_TEMPLATES[(key, Channel.EMAIL)]
    assert spec.version == 2
    with_certificate = context_of(
        licence_event(
            EventType.LICENCE_ISSUED,
            random_uscc(),
            licence_no="JY31000020260001",
            document=document_ref(
                b"%PDF cert", kind="licence", title="食盐定点批发许可证", number="JY31000020260001"
            ),
        )
    )
    body = render(spec, with_certificate).body
    assert "《食盐定点批发许可证》（证书编号 JY31000020260001）已加盖电子印章" in body
    assert "附件：JY31000020260001.pdf" in body
    without = render(spec, context_of(licence_event(EventType.LICENCE_ISSUED, random_uscc()))).body
    assert "已颁发，有效期至2031年11月27日。" in without
    assert "证书编号" not in without and "附件" not in without


@pytest.mark.parametrize(
    "source",
    ["{{ 1 / 0 }}", "{{ 'x' * 1000000000 }}", "{{ 2 ** 100000 }}", "{{ [1][5] }}", "{{ 'a' + 1 }}"],
)
def test_hostile_or_broken_templates_fail_as_render_errors(source: str) -> None:
    with pytest.raises(TemplateRenderFailed):
        render_text(source, {})


def _licence_context(event_type: EventType, **data: Any) -> dict[str, Any]:
    envelope = licence_event(event_type, random_uscc())
    envelope["data"].update(data)
    return context_of(envelope)


def test_penalty_notices_state_the_decision_and_the_notice_of_hearing_rights() -> None:
    context = _licence_context(
        EventType.LICENCE_PENALTY_REVOKED,
        status="penalty_revoked",
        reason="违反食盐储存规定，情节严重",
        act_on="2026-12-06",
        legal_basis="《食盐专营办法》第二十九条",
        penalty_decision_no="沪盐罚〔2026〕31号",
        rights_notified_on="2026-11-16",
        hearing="held",
        cancelled_on="2026-12-06",
    )
    body = render(
        BUILTIN_TEMPLATES[(str(EventType.LICENCE_PENALTY_REVOKED), Channel.INBOX)], context
    ).body
    assert "行政处罚决定（沪盐罚〔2026〕31号）" in body and "2026年12月6日吊销" in body
    assert "已于2026年11月16日告知" in body and "要求听证的权利" in body
    assert "并已依您的要求举行听证" in body
    assert "2026年12月6日依法注销（《行政许可法》第七十条）" in body
    assert "行政复议" in body


def test_withdrawal_notice_tells_the_compensation_and_rectification_the_deadline() -> None:
    withdrawn = _licence_context(
        EventType.LICENCE_WITHDRAWN,
        status="withdrawn",
        reason="所在区域规划调整",
        act_on="2026-12-06",
        legal_basis="《行政许可法》第八条第二款",
        compensation_note="对搬迁损失依法补偿",
        cancelled_on="2026-12-06",
    )
    body = render(BUILTIN_TEMPLATES[(str(EventType.LICENCE_WITHDRAWN), Channel.EMAIL)], withdrawn)
    assert "依法给予补偿：对搬迁损失依法补偿" in body.body
    rectify = _licence_context(
        EventType.LICENCE_RECTIFICATION_ORDERED,
        reason="检验设备未按承诺配齐",
        rectify_by="2027-01-05",
    )
    notice = render(
        BUILTIN_TEMPLATES[(str(EventType.LICENCE_RECTIFICATION_ORDERED), Channel.INBOX)], rectify
    )
    assert notice.title is not None and notice.title.startswith("责令限期整改通知")
    assert "请于2027年1月5日前整改到位" in notice.body


def test_the_notice_of_an_intended_penalty_tells_the_right_to_a_hearing() -> None:
    context = _licence_context(
        EventType.LICENCE_PENALTY_NOTIFIED,
        reason="违反食盐储存规定，情节严重",
        legal_basis="《食盐专营办法》第二十九条",
        rights_notified_on="2026-12-06",
        intended_penalty="suspension",
        hearing_request_deadline="2026-12-14",
    )
    spec = BUILTIN_TEMPLATES[(str(EventType.LICENCE_PENALTY_NOTIFIED), Channel.INBOX)]
    notice = render(spec, context)
    assert notice.title == "行政处罚事先告知：食盐定点批发许可证"
    assert "拟依据《食盐专营办法》第二十九条，暂扣您的" in notice.body
    assert "有权进行陈述和申辩，并有权要求听证" in notice.body
    assert "请于2026年12月14日前提出" in notice.body


def test_inspection_notices_tell_the_due_date_the_result_and_the_order() -> None:
    scheduled = _licence_context(
        EventType.LICENCE_INSPECTION_SCHEDULED,
        reason="双随机抽查",
        inspection_due_on="2027-01-08",
    )
    notice = render(
        BUILTIN_TEMPLATES[(str(EventType.LICENCE_INSPECTION_SCHEDULED), Channel.INBOX)], scheduled
    )
    assert notice.title is not None and notice.title.startswith("双随机抽查通知")
    assert "将于2027年1月8日前完成" in notice.body
    assert "申请回避" in notice.body
    result = _licence_context(
        EventType.LICENCE_INSPECTED,
        reason="不合格（食盐储存场所不符合防潮要求）",
        inspection_outcome="non_compliant",
        rectify_by="2027-01-20",
    )
    body = render(BUILTIN_TEMPLATES[(str(EventType.LICENCE_INSPECTED), Channel.INBOX)], result).body
    assert "抽查结果为：不合格（食盐储存场所不符合防潮要求）" in body
    assert "请于2027年1月20日前整改到位" in body
    compliant = _licence_context(EventType.LICENCE_INSPECTED, reason="合格")
    body = render(
        BUILTIN_TEMPLATES[(str(EventType.LICENCE_INSPECTED), Channel.INBOX)], compliant
    ).body
    assert "整改" not in body and "二十个工作日内" in body


@pytest.mark.parametrize(
    "event_type",
    [t for t in EventType if t.startswith("cn.gov.license.licence.")],
    ids=lambda t: t.split(".")[-2],
)
def test_licence_texts_name_the_licence_type_never_its_code(event_type: EventType) -> None:
    context = context_of(licence_event(event_type, random_uscc()))
    assert context["licence_type_code"] == "salt_wholesale_certificate"
    for (key, _channel), spec in BUILTIN_TEMPLATES.items():
        if key == str(event_type):
            rendered = render(spec, context)
            shown = f"{rendered.title or ''}{rendered.body}"
            assert "salt_wholesale_certificate" not in shown
            assert "食盐定点批发许可证" in shown
    if event_type == EventType.LICENCE_ISSUED:
        inbox = render(BUILTIN_TEMPLATES[(str(event_type), Channel.INBOX)], context)
        assert inbox.title == "许可证已颁发：食盐定点批发许可证"


def test_a_licence_event_without_the_type_name_still_shows_no_code() -> None:
    envelope = licence_event(EventType.LICENCE_SUSPENDED, random_uscc())
    del envelope["data"]["licence_type_name"]
    inbox = render(
        BUILTIN_TEMPLATES[(str(EventType.LICENCE_SUSPENDED), Channel.INBOX)], context_of(envelope)
    )
    assert (
        inbox.title == "暂扣许可证件决定：许可证"
    )  # 暂扣 is a penalty (行政处罚法 Art. 9), not a pause
    assert "salt_wholesale_certificate" not in inbox.body


def test_a_missed_correction_tells_the_holder_its_record_and_the_staff_the_proposal() -> None:
    context = _licence_context(
        EventType.LICENCE_RECTIFICATION_MISSED,
        reason="未在2027-01-20前整改到位（食盐储存场所不符合防潮要求），已记入严重失信记录，"
        "本机关拟依法暂扣许可证件",
        rectify_by="2027-01-20",
        jurisdiction="310115",
    )
    key = str(EventType.LICENCE_RECTIFICATION_MISSED)
    holder = render(BUILTIN_TEMPLATES[(key, Channel.INBOX)], context)
    assert holder.title == "逾期未整改通知：食盐定点批发许可证"
    assert "已记入严重失信记录" in holder.body
    assert "陈述、申辩和要求听证的权利" in holder.body
    staff = render(BUILTIN_TEMPLATES[(key, "staff_inbox")], context)
    assert staff.title is not None and staff.title.startswith("逾期未整改，待依法处理")
    assert "未在2027年1月20日前整改到位" in staff.body
    assert "拟依法暂扣许可证件" in staff.body
