"""Hostile free-form data: bounded before any work, validated like a submission, never a 500.

An item without declared form fields takes any ``form`` the applicant sends, and the applicant's 补正
merges a ``form`` into the stored one. Both are bounded (govshared.freeform) and the 补正 is checked
against the guide the application was submitted under. Nothing out of bounds is ever written, so
the applicant's list and the staff queue keep answering.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.demo import required_materials
from approval.models import Application
from approval.schemas import ApplicationOut
from govshared.auth import Role
from govshared.freeform import MAX_BYTES, MAX_DEPTH, MAX_MEMBERS, MAX_STRING_CHARS
from govshared.testing import Tokens, problem, random_uscc

FREE_ITEM = "JXW-XK-004"  # a city-level item whose guide declares no form fields
RADIO_ITEM = "JXW-XK-003"  # fields: station_type (string, required), antenna_height (string)


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep."""
    value: dict[str, Any] = {"leaf": "值"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def submit(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str, form: Any, *, item: str = FREE_ITEM
) -> httpx.Response:
    body = {"item_code": item, "applicant_name": "上海示范有限公司", "form": form}
    return await client.post("/api/v1/applications", json=body, headers=tokens.enterprise(uscc))


async def stored(session: AsyncSession, uscc: str) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Application).where(Application.applicant_uscc == uscc)
    )
    return int(count or 0)


def refused_field(response: httpx.Response, name: str) -> str:
    """The reason given for ``name`` in a 422 problem."""
    assert response.status_code == 422, response.text
    body = problem(response)
    params = {p["name"]: p["reason"] for p in body["invalid_params"]}  # type: ignore[union-attr]
    assert name in params, params
    return str(params[name])


async def test_a_256_deep_form_is_a_422_with_nothing_written_and_lists_still_answer(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    response = await submit(client, tokens, uscc, nested(256))
    assert "嵌套层级" in refused_field(response, "body.form")
    assert problem(response)["code"] == "validation_failed"
    assert await stored(session, uscc) == 0
    # What pydantic can still serialise but the bound refuses, just past the limit.
    assert (await submit(client, tokens, uscc, nested(MAX_DEPTH + 1))).status_code == 422
    assert await stored(session, uscc) == 0

    mine = await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))
    assert mine.status_code == 200 and mine.json()["items"] == []
    queue = await client.get(
        "/api/v1/staff/applications", headers=tokens.staff(Role.ACCEPTOR, "310000")
    )
    assert queue.status_code == 200, queue.text


async def test_a_form_within_bounds_is_accepted_and_listed(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    form = {
        "备注": "说明" * 100,
        "明细": [{"名称": "设备", "数量": 2}],
        "深": nested(MAX_DEPTH - 1),
    }
    response = await submit(client, tokens, uscc, form)
    assert response.status_code == 201, response.text
    assert response.json()["form"] == form
    listed = (await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))).json()
    assert listed["items"][0]["form"] == form


async def test_oversized_strings_keys_and_bodies_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    long_string = await submit(client, tokens, uscc, {"x": "字" * (MAX_STRING_CHARS + 1)})
    assert "字符串" in refused_field(long_string, "body.form")
    a_megabyte = await submit(client, tokens, uscc, {"x": "a" * 1_000_000})
    assert a_megabyte.status_code == 422
    many_keys = await submit(client, tokens, uscc, {f"k{i}": i for i in range(MAX_MEMBERS + 1)})
    assert "合计" in refused_field(many_keys, "body.form")
    long_key = await submit(client, tokens, uscc, {"k" * 201: 1})
    assert "键名" in refused_field(long_key, "body.form")
    # Each string within its limit, the whole beyond the size limit.
    chunk = MAX_STRING_CHARS // 2
    big = await submit(
        client, tokens, uscc, {f"k{i}": "b" * chunk for i in range(MAX_BYTES // chunk + 1)}
    )
    assert "字节" in refused_field(big, "body.form")
    assert await stored(session, uscc) == 0


async def test_values_json_decodes_but_no_database_stores_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    uscc = random_uscc()
    body = json.dumps({"item_code": FREE_ITEM, "applicant_name": "上海示范有限公司", "form": {}})
    for form, says in (('{"x": NaN}', "有限数"), ('{"x": "\\ud800"}', "Unicode")):
        response = await client.post(
            "/api/v1/applications",
            content=body.replace('"form": {}', f'"form": {form}').encode(),
            headers={**tokens.enterprise(uscc), "Content-Type": "application/json"},
        )
        assert says in refused_field(response, "body.form")
    assert await stored(session, uscc) == 0


async def _supplement_requested(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str, *, item: str, form: dict[str, Any]
) -> str:
    created = await submit(client, tokens, uscc, form, item=item)
    assert created.status_code == 201, created.text
    app_id = str(created.json()["id"])
    asked = await client.post(
        f"/api/v1/applications/{app_id}/supplement-request",
        json={"missing_items": ["技术方案"]},
        headers=tokens.staff(Role.ACCEPTOR),
    )
    assert asked.status_code == 200, asked.text
    return app_id


async def _supplement(
    client: httpx.AsyncClient, tokens: Tokens, uscc: str, app_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/applications/{app_id}/supplement", json=body, headers=tokens.enterprise(uscc)
    )


async def _state(client: httpx.AsyncClient, tokens: Tokens, uscc: str, app_id: str) -> Any:
    got = await client.get(f"/api/v1/applications/{app_id}", headers=tokens.enterprise(uscc))
    assert got.status_code == 200, got.text
    return got.json()


async def test_a_supplement_is_validated_against_the_guide_like_a_submission(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    app_id = await _supplement_requested(
        client, tokens, uscc, item=RADIO_ITEM, form={"station_type": "固定台站"}
    )
    stranger = await _supplement(client, tokens, uscc, app_id, form={"backdoor": "x"})
    assert stranger.status_code == 422 and problem(stranger)["code"] == "form_invalid"
    assert "办事指南中没有该字段" in refused_field(stranger, "form.backdoor")
    wrong_type = await _supplement(client, tokens, uscc, app_id, form={"antenna_height": 30})
    assert refused_field(wrong_type, "form.antenna_height")
    cleared = await _supplement(client, tokens, uscc, app_id, form={"station_type": ""})
    assert "必填" in refused_field(cleared, "form.station_type")
    deep = await _supplement(client, tokens, uscc, app_id, form=nested(256))
    assert "嵌套层级" in refused_field(deep, "body.form")
    long_name = await _supplement(client, tokens, uscc, app_id, changed_materials=["材" * 201])
    assert refused_field(long_name, "body.changed_materials.0")

    unchanged = await _state(client, tokens, uscc, app_id)
    assert unchanged["state"] == "supplement_requested"
    assert unchanged["form"] == {"station_type": "固定台站"}
    good = await _supplement(client, tokens, uscc, app_id, form={"antenna_height": "30m"})
    assert good.status_code == 200, good.text
    assert good.json()["form"] == {"station_type": "固定台站", "antenna_height": "30m"}


async def test_supplements_cannot_grow_a_free_form_past_its_bounds(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    chunk = MAX_STRING_CHARS
    first = {f"a{i}": "a" * chunk for i in range(MAX_BYTES // chunk // 2 + 1)}
    app_id = await _supplement_requested(client, tokens, uscc, item=FREE_ITEM, form=first)
    more = {f"b{i}": "b" * chunk for i in range(MAX_BYTES // chunk // 2 + 1)}
    grown = await _supplement(client, tokens, uscc, app_id, form=more)
    assert grown.status_code == 422 and problem(grown)["code"] == "form_invalid"
    assert "字节" in refused_field(grown, "form")
    after = await _state(client, tokens, uscc, app_id)
    assert after["state"] == "supplement_requested" and after["form"] == first
    listed = await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))
    assert listed.status_code == 200 and json.loads(listed.content)["items"][0]["id"] == app_id


async def test_a_service_guide_is_bounded_like_free_form_data(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    item = (await client.get(f"/api/v1/items/{FREE_ITEM}")).json()
    fields = ("name", "item_type", "authority", "jurisdiction", "is_instant")
    draft = {k: item[k] for k in fields} | {
        "code": f"SEC-FF-{random_uscc()[-6:]}",
        "statutory_limit_days": item["statutory_limit_days"],
        "committed_limit_days": item["committed_limit_days"],
    }
    guide = item["guide"]
    admin = tokens.header(Role.ADMIN)
    steps = await client.post(
        "/api/v1/items",
        json={**draft, "guide": {**guide, "steps": ["受理"] * (MAX_MEMBERS + 1)}},
        headers=admin,
    )
    assert "合计" in refused_field(steps, "body.guide")
    contacts = {f"窗口{i}": "x" * 7000 for i in range(12)}
    wide = await client.post(
        "/api/v1/items", json={**draft, "guide": {**guide, "contacts": contacts}}, headers=admin
    )
    assert "字节" in refused_field(wide, "body.guide")
    created = await client.post("/api/v1/items", json={**draft, "guide": guide}, headers=admin)
    assert created.status_code == 201, created.text


async def test_a_response_that_cannot_be_made_leaves_nothing_written(
    app: FastAPI, tokens: Tokens, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever slips past validation, the response is made before the write commits: a failure
    to make it is an error with nothing stored, never a stored application answered with a 500."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://approval.test") as client:
        uscc = random_uscc()
        created = await submit(client, tokens, uscc, {"x": 1}, item=FREE_ITEM)
        assert created.status_code == 201
        app_id = created.json()["id"]

        def unserialisable(self: ApplicationOut, **_: Any) -> str:
            raise ValueError("Maximum serialization depth exceeded")

        monkeypatch.setattr(ApplicationOut, "model_dump_json", unserialisable)
        failed = await submit(client, tokens, uscc, {"x": 2}, item=FREE_ITEM)
        assert failed.status_code == 500
        accept = await client.post(
            f"/api/v1/applications/{app_id}/accept",
            json={"tolerated_materials": required_materials(FREE_ITEM), "deliver_by": "2099-12-31"},
            headers=tokens.staff(Role.ACCEPTOR),
        )
        assert accept.status_code == 500
        monkeypatch.undo()

        assert await stored(session, uscc) == 1
        mine = await client.get("/api/v1/applications", headers=tokens.enterprise(uscc))
        assert mine.status_code == 200
        assert [(a["id"], a["state"]) for a in mine.json()["items"]] == [(app_id, "submitted")]
