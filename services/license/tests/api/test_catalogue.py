"""The reform catalogue: modes in force across versions and jurisdictions, statistics, admin."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.contracts import ReformModeAnswer
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.catalogue.service import load_demo_catalogue
from licensing.models import ReformItemVersion


async def _mode(
    client: httpx.AsyncClient, tokens: Tokens, code: str, jurisdiction: str, on: str
) -> httpx.Response:
    return await client.get(
        f"/api/v1/reform-items/{code}/mode",
        params={"jurisdiction": jurisdiction, "on": on},
        headers=tokens.service("approval"),
    )


async def test_mode_answer_is_the_shared_contract(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await _mode(client, tokens, "JXW-CN-011", "310000", "2026-11-28")
    assert response.status_code == 200, response.text
    answer = ReformModeAnswer.model_validate_json(response.content)
    assert answer.mode == "notification_commitment"
    assert answer.mode_label == "实行告知承诺"
    assert answer.item_name == "固定资产投资项目节能审查"
    assert answer.commitment_text and "郑重承诺" in answer.commitment_text


async def test_a_district_inherits_the_city_wide_mode_until_it_has_its_own(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # 浦东新区 has its own version of JXW-XK-001 from 2021-07-01 (delegation); before, the city's.
    before = (await _mode(client, tokens, "JXW-XK-001", "310115", "2020-06-01")).json()
    after = (await _mode(client, tokens, "JXW-XK-001", "310115", "2021-07-01")).json()
    city = (await _mode(client, tokens, "JXW-XK-001", "310000", "2026-11-28")).json()
    assert (before["jurisdiction"], before["version"]) == ("310000", 1)
    assert (after["jurisdiction"], after["version"]) == ("310115", 2)
    assert (city["jurisdiction"], city["version"]) == ("310000", 1)
    # A district without versions of its own inherits everything.
    other = (await _mode(client, tokens, "JXW-XK-001", "310104", "2026-11-28")).json()
    assert other["jurisdiction"] == "310000"


async def test_lingang_has_its_own_modes(client: httpx.AsyncClient, tokens: Tokens) -> None:
    # Looser: radio stations under commitment in 临港新片区 from 2022; stricter: 009 stays an approval.
    radio_2021 = (await _mode(client, tokens, "JXW-XK-003", "310118", "2021-12-31")).json()
    radio_2022 = (await _mode(client, tokens, "JXW-XK-003", "310118", "2022-01-01")).json()
    radio_city = (await _mode(client, tokens, "JXW-XK-003", "310000", "2026-11-28")).json()
    assert radio_2021["mode"] == "optimize_service"
    assert radio_2022["mode"] == "notification_commitment"
    assert radio_2022["commitment_text"]
    assert radio_city["mode"] == "optimize_service"
    chem_lingang = (await _mode(client, tokens, "JXW-BA-009", "310118", "2026-11-28")).json()
    chem_city = (await _mode(client, tokens, "JXW-BA-009", "310000", "2026-11-28")).json()
    assert chem_lingang["mode"] == "optimize_service"
    assert chem_city["mode"] == "approval_to_filing"


async def test_later_version_wins_over_earlier_one(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    early = (await _mode(client, tokens, "JXW-XK-002", "310000", "2020-01-01")).json()
    late = (await _mode(client, tokens, "JXW-XK-002", "310000", "2021-07-01")).json()
    assert (early["version"], late["version"]) == (1, 2)
    assert early["effective_from"] == "2019-12-01"
    assert late["effective_from"] == "2021-07-01"


async def test_unknown_item_and_item_not_yet_reformed_are_404_problems(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    unknown = await _mode(client, tokens, "JXW-XK-999", "310000", "2026-11-28")
    assert unknown.status_code == 404
    assert problem(unknown)["code"] == "reform_item_not_found"
    detail = await client.get("/api/v1/reform-items/JXW-XK-999")
    assert detail.status_code == 404
    assert problem(detail)["code"] == "reform_item_not_found"
    too_early = await _mode(client, tokens, "JXW-CN-011", "310000", "2020-01-01")
    assert too_early.status_code == 404
    assert problem(too_early)["code"] == "reform_mode_not_in_force"


async def test_mode_needs_a_token_but_any_role_will_do(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    anonymous = await client.get("/api/v1/reform-items/JXW-XK-001/mode")
    assert anonymous.status_code == 401
    assert problem(anonymous)["code"] == "unauthenticated"
    enterprise = await client.get(
        "/api/v1/reform-items/JXW-XK-001/mode", headers=tokens.enterprise(random_uscc())
    )
    assert enterprise.status_code == 200


async def test_bad_input_is_a_422_problem_never_a_500(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    headers = tokens.service()
    for params in ({"jurisdiction": "31"}, {"on": "2026-13-45"}, {"jurisdiction": "abcdef"}):
        response = await client.get(
            "/api/v1/reform-items/JXW-XK-001/mode", params=params, headers=headers
        )
        assert response.status_code == 422, params
        assert problem(response)["code"] == "validation_failed"
    bad_cursor = await client.get("/api/v1/reform-items", params={"cursor": "!!!"})
    assert bad_cursor.status_code == 400
    bad_mode = await client.get("/api/v1/reform-items", params={"mode": "nope"})
    assert bad_mode.status_code == 422


async def test_public_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/api/v1/reform-items", params={"limit": 100})).json()
    assert len(everything["items"]) == 13  # every item of approval's catalogue
    assert everything["next_cursor"] is None

    codes: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/reform-items", params=params)).json()
        codes += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert codes == sorted(codes) == [i["code"] for i in everything["items"]]

    filing = (
        await client.get("/api/v1/reform-items", params={"mode": "approval_to_filing"})
    ).json()
    assert [i["code"] for i in filing["items"]] == ["JXW-BA-009", "JXW-BA-010"]
    lingang = (
        await client.get(
            "/api/v1/reform-items",
            params={"mode": "approval_to_filing", "jurisdiction": "310118"},
        )
    ).json()
    assert [i["code"] for i in lingang["items"]] == ["JXW-BA-010"]
    salt = (await client.get("/api/v1/reform-items", params={"keyword": "食盐"})).json()
    assert [i["code"] for i in salt["items"]] == ["JXW-XK-001", "JXW-XK-002"]
    by_code = (await client.get("/api/v1/reform-items", params={"keyword": "qx-008"})).json()
    assert by_code["items"][0]["in_force"]["mode_label"] == "直接取消审批"
    first_batch = (await client.get("/api/v1/reform-items", params={"on": "2019-12-01"})).json()
    assert len(first_batch["items"]) == 7


async def test_statistics_are_computed_from_the_versions(client: httpx.AsyncClient) -> None:
    first = (
        await client.get("/api/v1/reform-items/statistics", params={"on": "2019-12-01"})
    ).json()
    counts = {m["mode"]: m["count"] for m in first["by_mode"]}
    assert first["total"] == 7
    assert counts == {
        "cancel_approval": 1,
        "approval_to_filing": 0,
        "notification_commitment": 0,
        "optimize_service": 6,
    }
    assert "7项事项" in first["summary"]
    assert "直接取消审批1项" in first["summary"] and "优化审批服务6项" in first["summary"]

    now = (await client.get("/api/v1/reform-items/statistics", params={"on": "2026-11-28"})).json()
    assert now["total"] == 13
    assert {m["mode"]: m["count"] for m in now["by_mode"]} == {
        "cancel_approval": 1,
        "approval_to_filing": 2,
        "notification_commitment": 2,
        "optimize_service": 8,
    }
    assert [p["on"] for p in now["timeline"]] == ["2019-12-01", "2021-07-01"]
    assert [p["total"] for p in now["timeline"]] == [7, 13]
    per_place = {j["jurisdiction"]: j for j in now["by_jurisdiction"]}
    assert set(per_place) >= {"310000", "310115", "310118"}
    lingang = {m["mode"]: m["count"] for m in per_place["310118"]["by_mode"]}
    assert lingang["notification_commitment"] == 3
    assert lingang["approval_to_filing"] == 1
    assert per_place["310118"]["own_versions"] == 2
    assert per_place["310115"]["own_versions"] == 1


async def test_admin_adds_a_version_without_touching_history(
    client: httpx.AsyncClient, tokens: Tokens, session: AsyncSession
) -> None:
    code = "JXW-XK-005"
    before = (await client.get(f"/api/v1/reform-items/{code}")).json()["versions"]
    starts = clock.today() + timedelta(days=30)
    body = {
        "jurisdiction": "310115",
        "effective_from": starts.isoformat(),
        "mode": "notification_commitment",
        "batch": "浦东新区“证照分离”改革深化举措",
        "reform_measures": "浦东新区对第二类监控化学品使用许可实行告知承诺。",
        "supervision_measures": "发证后30日内全覆盖核查。",
        "supervising_department": "浦东新区经济和信息化委员会",
        "commitment_text": "本单位郑重承诺所提交材料真实有效。",
    }
    created = await client.post(
        f"/api/v1/reform-items/{code}/versions", json=body, headers=tokens.header(Role.ADMIN)
    )
    assert created.status_code == 201, created.text
    new_version = created.json()["version"]
    assert new_version == max(v["version"] for v in before) + 1

    after = (await client.get(f"/api/v1/reform-items/{code}")).json()["versions"]
    assert after[: len(before)] == before
    day_before = (starts - timedelta(days=1)).isoformat()
    old = (await _mode(client, tokens, code, "310115", day_before)).json()
    new = (await _mode(client, tokens, code, "310115", starts.isoformat())).json()
    city = (await _mode(client, tokens, code, "310000", starts.isoformat())).json()
    assert old["mode"] == "optimize_service" and old["version"] == 1
    assert new["mode"] == "notification_commitment" and new["version"] == new_version
    assert city["mode"] == "optimize_service"

    # A code that names no place (no province 99; county 00 under a real city part) is a 422:
    # a version filed under it would be found by no one.
    for nowhere in ("990000", "310015"):
        refused = await client.post(
            f"/api/v1/reform-items/{code}/versions",
            json={**body, "jurisdiction": nowhere},
            headers=tokens.header(Role.ADMIN),
        )
        assert refused.status_code == 422, nowhere
        assert problem(refused)["code"] == "validation_failed"

    again = await client.post(
        f"/api/v1/reform-items/{code}/versions", json=body, headers=tokens.header(Role.ADMIN)
    )
    assert again.status_code == 409
    assert problem(again)["code"] == "reform_version_conflict"
    stored = await session.scalar(
        select(func.count())
        .select_from(ReformItemVersion)
        .where(ReformItemVersion.item_code == code)
    )
    assert stored == len(before) + 1


async def test_history_cannot_be_rewritten(client: httpx.AsyncClient, tokens: Tokens) -> None:
    body = {
        "jurisdiction": "310000",
        "effective_from": "2020-01-01",
        "mode": "cancel_approval",
        "reform_measures": "改写历史",
        "supervision_measures": "无特别措施",
        "supervising_department": "某部门",
    }
    past = await client.post(
        "/api/v1/reform-items/JXW-XK-004/versions", json=body, headers=tokens.header(Role.ADMIN)
    )
    assert past.status_code == 422
    assert problem(past)["code"] == "retroactive_version"
    no_text = await client.post(
        "/api/v1/reform-items/JXW-XK-004/versions",
        json={
            **body,
            "effective_from": (clock.today() + timedelta(days=400)).isoformat(),
            "mode": "notification_commitment",
        },
        headers=tokens.header(Role.ADMIN),
    )
    assert no_text.status_code == 422
    assert problem(no_text)["code"] == "commitment_text_required"


async def test_only_admins_add_versions(client: httpx.AsyncClient, tokens: Tokens) -> None:
    body = {
        "jurisdiction": "310000",
        "effective_from": (clock.today() + timedelta(days=10)).isoformat(),
        "mode": "optimize_service",
        "reform_measures": "措施",
        "supervision_measures": "监管",
        "supervising_department": "部门",
    }
    anonymous = await client.post("/api/v1/reform-items/JXW-XK-004/versions", json=body)
    assert anonymous.status_code == 401
    assert problem(anonymous)["code"] == "unauthenticated"
    for headers in (
        tokens.staff(Role.APPROVER),
        tokens.service(),
        tokens.enterprise(random_uscc()),
    ):
        denied = await client.post(
            "/api/v1/reform-items/JXW-XK-004/versions", json=body, headers=headers
        )
        assert denied.status_code == 403
        assert problem(denied)["code"] == "forbidden"
    missing = await client.post(
        "/api/v1/reform-items/NOPE-1/versions", json=body, headers=tokens.header(Role.ADMIN)
    )
    assert missing.status_code == 404
    assert problem(missing)["code"] == "reform_item_not_found"


async def test_admin_adds_an_item(client: httpx.AsyncClient, tokens: Tokens) -> None:
    code = f"JXW-XK-9{random_uscc()[10:14]}"
    body = {
        "code": code,
        "name": "演示新增事项",
        "department": "上海市经济和信息化委员会",
        "first_version": {
            "jurisdiction": "310000",
            "effective_from": clock.today().isoformat(),
            "mode": "approval_to_filing",
            "reform_measures": "审批改为备案",
            "supervision_measures": "双随机抽查",
            "supervising_department": "上海市经济和信息化委员会",
        },
    }
    created = await client.post(
        "/api/v1/reform-items", json=body, headers=tokens.header(Role.ADMIN)
    )
    assert created.status_code == 201, created.text
    answer = await _mode(client, tokens, code, "310118", clock.today().isoformat())
    assert answer.json()["mode"] == "approval_to_filing"
    duplicate = await client.post(
        "/api/v1/reform-items", json=body, headers=tokens.header(Role.ADMIN)
    )
    assert duplicate.status_code == 409
    assert problem(duplicate)["code"] == "reform_item_exists"


async def test_demo_catalogue_load_is_idempotent(app: FastAPI) -> None:
    async with app.state.sessionmaker() as s, s.begin():
        assert await load_demo_catalogue(s) == 0
