"""Admin templates cannot stall notify: bounded sandbox, streamed output, off the event loop."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from govshared.auth import Role
from govshared.events import EventType
from govshared.testing import Tokens, problem, random_uscc
from notify.errors import TemplateLimitExceeded, TemplateRenderFailed
from notify.templates import RenderLimits, render_text

from ..conftest import application_event, post_events

WITHDRAWN = str(EventType.APPLICATION_WITHDRAWN)
# A million empty loop turns: nothing the old sandbox looked at, and it scales to hours.
NESTED = "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}done"


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        (NESTED, "steps"),
        ("{{ '%050000000d' % 1 }}", "format_width"),
        ("{{ '%0*d' % (50000000, 1) }}", "format_width"),
        ("{{ '%.50000000f' % 1.5 }}", "format_width"),
        ("{{ '%050000000d'|format(1) }}", "format_width"),
        ("{{ '{:050000000}'.format(1) }}", "format_width"),
        ("{{ '{:0{}}'.format(1, 50000000) }}", "format_width"),
        ("{{ '{x:>50000000}'.format_map({'x': 1}) }}", "format_width"),
        ("{{ 'x'|center(50000000) }}", "value_size"),
        ("{{ 'x'.ljust(50000000) }}", "value_size"),
        ("{{ 'x\ty'.expandtabs(50000000) }}", "value_size"),
        ("{{ (1).to_bytes(50000000, 'big') }}", "value_size"),
        ("{{ ('x' * 20000)|replace('x', 'yy') }}", "value_size"),
        ("{{ ('x' * 20000).replace('x', 'yy') }}", "value_size"),
        ("{{ ('x' * 20000).translate({120: 'yy'}) }}", "value_size"),
        ("{{ range(100000)|join('x' * 100) }}", "value_size"),
        ("{{ range(30000)|list|tojson(indent=100) }}", "value_size"),
        ("{{ [1]|batch(50000000, 'x')|list }}", "value_size"),
        ("{{ range(30000)|map('string')|join('x' * 100) }}", "value_size"),
        ("{{ ('a.b ' * 5000)|urlize(target='t' * 20000) }}", "value_size"),
        ("{{ ([[1]] * 20000)|sum(start=[]) }}", "value_size"),
        ("{{ 'x'|indent(50000000) }}", "value_size"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "value_size",
        ),
        (
            "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
            "value_size",
        ),
        (
            "{% set ns = namespace(x=3) %}{% for i in range(40) %}"
            "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x % 10 }}",
            "value_size",
        ),
        # Captured text counts as it is produced, not only what is finally printed.
        (
            "{% set x %}{% for i in range(100000) %}{{ 'x' * 20000 }}{% endfor %}{% endset %}"
            "{{ x|length }}",
            "output",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output"),
        ("{% for i in range(100000) %}{{ 'y' }}{% endfor %}", "output"),
        ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "steps"),
        (
            "{% for x in [1, 2] recursive %}{{ loop([1, 2]) if loop.depth < 30 }}{% endfor %}",
            "steps",
        ),
    ],
)
def test_hostile_templates_are_refused_with_the_limit_they_hit(source: str, limit: str) -> None:
    # A generous clock, so that the limit hit is the one under test even on a loaded machine.
    with pytest.raises(TemplateLimitExceeded) as caught:
        render_text(source, {}, RenderLimits(max_seconds=120.0))
    assert caught.value.code == "template_limit_exceeded"
    assert caught.value.extensions["limit"] == limit


def test_work_inside_a_loop_is_stopped_by_the_clock() -> None:
    # Few steps (a hundred thousand turns), each summing a hundred thousand numbers: hours of
    # work that only the clock, checked at every turn, can stop.
    source = "{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}"
    with pytest.raises(TemplateLimitExceeded) as caught:
        render_text(source, {}, RenderLimits(max_steps=10_000_000, max_seconds=0.2))
    assert caught.value.extensions["limit"] == "time"


def test_a_template_may_not_grow_a_list_in_place() -> None:
    with pytest.raises(TemplateRenderFailed):
        render_text("{% set l = [1] %}{% for i in range(40) %}{{ l.extend(l) }}{% endfor %}", {})


def test_deeply_nested_source_is_a_render_error_not_a_crash() -> None:
    with pytest.raises(TemplateRenderFailed):
        render_text("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", {})


def test_ordinary_formats_loops_and_macros_still_render() -> None:
    source = (
        "{% macro row(n) %}{{ '%03d' % n }}/{{ '{:>4}'.format(n) }}{% endmacro %}"
        "{% for n in items %}{{ row(n) }};{% endfor %}{{ '%s'|format(name)|center(9) }}"
        "{{ ('a' ~ 'b') + 'c' }}{{ '%.2f' % 1.5 }}"
    )
    text = render_text(source, {"items": [1, 22], "name": "张三"})
    assert text == "001/   1;022/  22;    张三   abc1.50"


def test_the_limits_are_the_settings() -> None:
    tight = RenderLimits(max_output=100, max_steps=300, max_seconds=60.0, max_format_width=4)
    assert render_text("{{ 'x' * 100 }}", {}, tight) == "x" * 100
    with pytest.raises(TemplateLimitExceeded) as output:
        render_text("{% for i in range(30) %}xxxxx{% endfor %}", {}, tight)
    assert output.value.extensions["limit"] == "output"
    with pytest.raises(TemplateLimitExceeded) as steps:
        render_text("{% for i in range(400) %}{% endfor %}", {}, tight)
    assert steps.value.extensions["limit"] == "steps"
    with pytest.raises(TemplateLimitExceeded) as width:
        render_text("{{ '%05d' % 1 }}", {}, tight)
    assert width.value.extensions["limit"] == "format_width"
    assert render_text("{{ '%04d' % 1 }}", {}, tight) == "0001"


async def test_preview_refuses_a_nested_loop_and_a_huge_format_as_422(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.header(Role.ADMIN)
    for source, limit in ((NESTED, "steps"), ("{{ '%050000000d' % 1 }}", "format_width")):
        response = await client.post(
            "/api/v1/templates/preview",
            json={"event_type": WITHDRAWN, "channel": "inbox", "body": source},
            headers=admin,
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = problem(response)
        assert body["code"] == "template_limit_exceeded"
        # The nested loop runs out of steps, or of time first on a very busy machine.
        assert body["limit"] in ((limit, "time") if limit == "steps" else (limit,))
        assert body["title_en"] == "The message template exceeded a rendering limit"


async def test_preview_renders_off_the_event_loop(
    client: httpx.AsyncClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    import notify.templates.service

    threads: list[int] = []
    original = notify.templates.service.render

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(notify.templates.service, "render", recording)
    response = await client.post(
        "/api/v1/templates/preview",
        json={"event_type": WITHDRAWN, "channel": "inbox", "body": "好 {{ x }}", "data": {"x": 1}},
        headers=tokens.header(Role.ADMIN),
    )
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "好 1"
    assert threads and threading.get_ident() not in threads


async def test_a_published_bomb_dead_letters_its_delivery_with_the_limit(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.header(Role.ADMIN)
    published = await client.post(
        "/api/v1/templates",
        json={"event_type": WITHDRAWN, "channel": "inbox", "body": NESTED},
        headers=admin,
    )
    assert published.status_code == 201, published.text
    try:
        uscc = random_uscc()
        event = application_event(EventType.APPLICATION_WITHDRAWN, uscc, jurisdiction="310115")
        response = await post_events(client, tokens, [event])
        assert response.json()["results"][0]["outcome"] == "accepted"
        inbox = await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))
        assert inbox.json()["items"] == []
        staff = tokens.staff(Role.ACCEPTOR, "310115")
        dead = (await client.get("/api/v1/deliveries", headers=staff)).json()["items"]
        mine = [d for d in dead if d["event_id"] == event["id"]]
        assert len(mine) == 1
        assert "步数" in mine[0]["last_error"] or "秒" in mine[0]["last_error"]
    finally:
        # Later tests in the session use the withdrawn notice: put a working text back.
        await client.post(
            "/api/v1/templates",
            json={
                "event_type": WITHDRAWN,
                "channel": "inbox",
                "title": "申请已撤回：{{ item_name }}",
                "body": "您的「{{ item_name }}」申请（办件编号 {{ application_no }}）已撤回。",
            },
            headers=admin,
        )
