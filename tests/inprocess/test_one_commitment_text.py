"""One 告知承诺 text per item version, owned by license and served identically by approval.

Approval and the real license app run in this process, each on its own database of each backend
(PostgreSQL and SQLite), approval reaching license's REST API through its typed client; both load
their shipped demo catalogues. For every demo item in the 告知承诺 mode the text and digest of
license's ``/reform-items/{code}/mode`` and of approval's guide are the same, and an application
signed with license's text is decided at once; every approval item has the same reform mode in
license's catalogue (国办发〔2020〕42号: the item, the mode and the commitment are published once).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from approval.config import Settings as ApprovalSettings
from approval.main import ALEMBIC_INI as APPROVAL_ALEMBIC
from approval.main import create_app as create_approval
from approval.signing.config import dev_ca_directory
from govshared.migrate import upgrade
from govshared.signing.phone import sign_commitment
from govshared.testing import (
    BACKENDS,
    Tokens,
    drop_postgres_database,
    make_database,
    problem,
    random_uscc,
)
from licensing.config import Settings as LicenseSettings
from licensing.main import ALEMBIC_INI as LICENSE_ALEMBIC
from licensing.main import create_app as create_license

LICENSE_URL = "http://license.inprocess"
# The text approval's own guide used to publish for JXW-CN-011: not the one license publishes.
OLD_APPROVAL_TEXT = (
    "本单位郑重承诺：所申报的固定资产投资项目符合国家和本市节能法律法规、标准及产业政策要求，"
    "节能报告内容真实、准确、完整。如有虚假，愿承担撤销审查意见、纳入失信记录等法律责任。"
)


@dataclass
class Pair:
    """Approval and license, wired together in this process."""

    approval: FastAPI
    license: FastAPI
    tokens: Tokens


@pytest.fixture(scope="module", params=BACKENDS)
async def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pair]:
    """Both services on their own migrated databases of the backend, demo catalogues loaded."""
    work = tmp_path_factory.mktemp(f"pair-{request.param}")
    tokens = Tokens(work / "keys")
    urls = {
        name: await make_database(request.param, prefix=f"pair_{name}", directory=work)
        for name in ("approval", "license")
    }
    await asyncio.to_thread(upgrade, APPROVAL_ALEMBIC, urls["approval"])
    await asyncio.to_thread(upgrade, LICENSE_ALEMBIC, urls["license"])
    common: dict[str, Any] = {
        "environment": "test",
        **tokens.settings(),
        "migrate_on_start": False,
        "run_workers": False,
        "log_json": False,
        "log_level": "WARNING",
    }
    license_app = create_license(
        LicenseSettings(database_url=urls["license"], data_dir=work / "license", **common)
    )
    approval_app = create_approval(
        ApprovalSettings(
            database_url=urls["approval"],
            data_dir=work / "approval",
            license_url=LICENSE_URL,
            reform_mode_cache_seconds=0,
            **common,
        ),
        http_mounts={LICENSE_URL: httpx.ASGITransport(app=license_app)},
    )
    try:
        async with (
            license_app.router.lifespan_context(license_app),
            approval_app.router.lifespan_context(approval_app),
        ):
            yield Pair(approval=approval_app, license=license_app, tokens=tokens)
    finally:
        if request.param == "postgresql":
            for url in urls.values():
                await drop_postgres_database(url)


def client_of(app: FastAPI, base: str) -> httpx.AsyncClient:
    """An HTTP client of an app in this process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


def form_for(guide: dict[str, Any]) -> dict[str, Any]:
    """A form filling every field of the guide with a value of its type."""
    sample = {"string": "测试项目", "number": 1, "date": "2026-01-05", "boolean": True}
    return {f["name"]: sample[f["type"]] for f in guide["form_fields"]}


async def approval_items(approval: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every item of approval's catalogue (all pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await approval.get("/api/v1/items", params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def test_every_approval_item_has_the_same_reform_mode_in_license(pair: Pair) -> None:
    headers = pair.tokens.enterprise(random_uscc())  # license's answer is for any caller
    async with (
        client_of(pair.approval, "http://approval.test") as approval,
        client_of(pair.license, LICENSE_URL) as license,
    ):
        items = await approval_items(approval)
        assert len(items) == 13
        for item in items:
            answer = await license.get(
                f"/api/v1/reform-items/{item['code']}/mode",
                params={"jurisdiction": item["jurisdiction"]},
                headers=headers,
            )
            assert answer.status_code == 200, (item["code"], answer.text)
            assert answer.json()["mode"] == item["reform_mode"], item["code"]


async def test_both_services_publish_one_commitment_text_and_it_is_accepted(pair: Pair) -> None:
    uscc = random_uscc()
    async with (
        client_of(pair.approval, "http://approval.test") as approval,
        client_of(pair.license, LICENSE_URL) as license,
    ):
        commitment_items = [
            i
            for i in await approval_items(approval)
            if i["reform_mode"] == "notification_commitment"
        ]
        assert {i["code"] for i in commitment_items} == {"JXW-CN-011", "JXW-CN-012"}
        for listed in commitment_items:
            code = listed["code"]
            mode = (
                await license.get(
                    f"/api/v1/reform-items/{code}/mode",
                    params={"jurisdiction": listed["jurisdiction"]},
                    headers=pair.tokens.enterprise(uscc),
                )
            ).json()
            item = (await approval.get(f"/api/v1/items/{code}")).json()
            text = mode["commitment_text"]
            assert text and item["guide"]["commitment_text"] == text, code
            digest = hashlib.sha256(text.encode()).hexdigest()
            assert mode["commitment_text_sha256"] == digest == item["commitment_text_sha256"]
            assert item["commitment_version"] == mode["version"]

            # The applicant signs license's text on its phone (SM2, its electronic seal): the
            # signed letter is exactly license's text, and the application is decided at once.
            session_id = await sign_commitment(
                approval,
                headers=pair.tokens.enterprise(uscc),
                uscc=uscc,
                item_code=code,
                applicant_name="上海承诺示范有限公司",
                ca_directory=dev_ca_directory(pair.approval.state.settings.data_dir),
            )
            session = (
                await approval.get(
                    f"/api/v1/signing-sessions/{session_id}",
                    headers=pair.tokens.enterprise(uscc),
                )
            ).json()
            assert json.loads(session["content"])["text"] == text
            signed = await approval.post(
                "/api/v1/applications",
                json={
                    "item_code": code,
                    "applicant_name": "上海承诺示范有限公司",
                    "form": form_for(item["guide"]),
                    "sign_commitment": True,
                    "commitment_text_sha256": digest,
                    "commitment_signing_session": session_id,
                },
                headers=pair.tokens.enterprise(uscc),
            )
            assert signed.status_code == 201, signed.text
            assert signed.json()["state"] == "approved"
            assert signed.json()["intake_route"] == "commitment"

        # A text that is not the published one (approval's former copy) is refused.
        other = await approval.post(
            "/api/v1/applications",
            json={
                "item_code": "JXW-CN-011",
                "applicant_name": "上海承诺示范有限公司",
                "form": form_for((await approval.get("/api/v1/items/JXW-CN-011")).json()["guide"]),
                "sign_commitment": True,
                "commitment_text_sha256": hashlib.sha256(OLD_APPROVAL_TEXT.encode()).hexdigest(),
            },
            headers=pair.tokens.enterprise(uscc),
        )
        assert other.status_code == 422 and problem(other)["code"] == "commitment_not_allowed"
