"""Templates: sandboxed, strict about missing variables, every built-in renders."""

from __future__ import annotations

import pytest

from govshared.events import EventType
from notify.errors import TemplateRenderFailed
from notify.models import Channel
from notify.templates import BUILTIN_TEMPLATES, TemplateSpec, render, render_text, variables

APPLICATION = {
    "item_name": "食盐定点批发企业审批",
    "application_no": "310000-20261128-ABCD1234",
    "applicant_name": "上海盐业示范有限公司",
    "reason": None,
    "due_on": None,
}
LICENCE = {
    "holder_name": "上海盐业示范有限公司",
    "licence_type": "食盐定点批发许可证",
    "licence_no": "JY31000020260001",
    "valid_until": "2031年11月27日",
    "reason": None,
}


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
    context = LICENCE if spec.event_type.startswith("cn.gov.license.") else APPLICATION
    rendered = render(spec, context)
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


def test_critical_statutory_notices_have_sms_templates() -> None:
    for event_type in (
        EventType.APPLICATION_ACCEPTED,
        EventType.APPLICATION_REJECTED,
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
        EventType.APPLICATION_APPROVED,
        EventType.APPLICATION_DENIED,
        EventType.LICENCE_ISSUED,
        EventType.LICENCE_REVOKED,
    ):
        assert (str(event_type), Channel.SMS) in BUILTIN_TEMPLATES


@pytest.mark.parametrize(
    "source",
    ["{{ 1 / 0 }}", "{{ 'x' * 1000000000 }}", "{{ 2 ** 100000 }}", "{{ [1][5] }}", "{{ 'a' + 1 }}"],
)
def test_hostile_or_broken_templates_fail_as_render_errors(source: str) -> None:
    with pytest.raises(TemplateRenderFailed):
        render_text(source, {})


def test_internal_webhook_hosts_are_recognised() -> None:
    from notify.service import _internal_host

    for host in ("localhost", "127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]", "192.168.0.1"):
        assert _internal_host(host), host
    for host in ("erp.example.com", "8.8.8.8"):
        assert not _internal_host(host), host
