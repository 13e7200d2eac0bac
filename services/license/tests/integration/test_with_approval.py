"""Issue 5's cross-service path in one process: approval's real app decides, its relay delivers the
approved event to license's real app, and license issues the licence exactly once.

Both apps run their real lifespans on databases of their own; HTTP between them goes through
``httpx.ASGITransport`` mounted on each other's URL, so no sockets and no stand-ins are involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from approval.catalogue.demo import required_materials
from approval.config import Settings as ApprovalSettings
from approval.context import context_of as approval_context_of
from approval.main import ALEMBIC_INI as APPROVAL_ALEMBIC_INI
from approval.main import create_app as create_approval_app
from approval.signing.config import dev_ca_directory
from govshared.auth import Role
from govshared.migrate import upgrade
from govshared.signing.phone import sign_commitment
from govshared.testing import BACKENDS, Tokens, drop_postgres_database, make_database, random_uscc
from licensing.config import Settings
from licensing.main import ALEMBIC_INI, create_app

LICENSE_URL = "http://license.test"
APPROVAL_URL = "http://approval.test"


@pytest.fixture(params=BACKENDS)
async def pair(
    request: pytest.FixtureRequest,
    tokens: Tokens,
    tmp_path: Path,
    settings_maker: Callable[..., Settings],
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """License and approval, each on its own database of the backend, wired to each other."""
    urls = [
        await make_database(request.param, prefix=f"pair_{name}", directory=tmp_path)
        for name in ("license", "approval")
    ]
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, urls[0])
        await asyncio.to_thread(upgrade, APPROVAL_ALEMBIC_INI, urls[1])
        license_app = create_app(settings_maker(urls[0], tokens, tmp_path, approval_url=""))
        approval_settings = ApprovalSettings(
            environment="test",
            database_url=urls[1],
            data_dir=tmp_path,
            **tokens.settings(),  # type: ignore[arg-type]
            migrate_on_start=False,
            run_workers=False,
            license_url=LICENSE_URL,
            license_events_url=f"{LICENSE_URL}/api/v1/events",
            notify_events_url="http://notify.test/api/v1/events",
            reform_mode_cache_seconds=0,
            log_json=False,
            log_level="WARNING",
        )
        approval_app = create_approval_app(
            approval_settings,
            http_mounts={
                LICENSE_URL: httpx.ASGITransport(app=license_app),
                "http://notify.test": httpx.MockTransport(lambda _: httpx.Response(200)),
            },
        )
        async with (
            license_app.router.lifespan_context(license_app),
            approval_app.router.lifespan_context(approval_app),
        ):
            yield license_app, approval_app
    finally:
        if request.param == "postgresql":
            for url in urls:
                await drop_postgres_database(url)


async def test_approval_decision_issues_a_licence_once(
    pair: tuple[FastAPI, FastAPI], tokens: Tokens
) -> None:
    license_app, approval_app = pair
    uscc = random_uscc()
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=approval_app), base_url=APPROVAL_URL
        ) as approval,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=license_app), base_url=LICENSE_URL
        ) as license_,
    ):
        submitted = await approval.post(
            "/api/v1/applications",
            json={
                "item_code": "JXW-XK-002",
                "applicant_name": "上海盐业示范有限公司",
                "form": {"warehouse_address": "上海市浦东新区申江路1号", "warehouse_area": 1200},
            },
            headers=tokens.enterprise(uscc),
        )
        assert submitted.status_code == 201, submitted.text
        # Approval asked the real license service for the mode in force.
        assert submitted.json()["reform_mode"] == "optimize_service"
        application_id = submitted.json()["id"]
        for path, role in (("accept", Role.ACCEPTOR), ("review", Role.REVIEWER)):
            done = await approval.post(
                f"/api/v1/applications/{application_id}/{path}",
                # 容缺受理 (Art. 32): this test uploads no materials.
                json={"opinion": "同意"}
                if path == "review"
                else {
                    "tolerated_materials": required_materials("JXW-XK-002"),
                    "deliver_by": "2099-12-31",
                },
                headers=tokens.staff(role),
            )
            assert done.status_code == 200, done.text
        approved = await approval.post(
            f"/api/v1/applications/{application_id}/approve",
            json={"opinion": "准予许可"},
            headers=tokens.staff(Role.APPROVER),
        )
        assert approved.status_code == 200, approved.text

        while await approval_context_of(approval_app).relay.run_once():
            pass
        held = await license_.get(
            f"/api/v1/enterprises/{uscc}/licences", headers=tokens.header(Role.SERVICE)
        )
        [licence] = held.json()["items"]
        assert licence["item_code"] == "JXW-XK-002"
        assert licence["status"] == "valid"
        detail = (
            await license_.get(
                f"/api/v1/licences/{licence['licence_no']}", headers=tokens.enterprise(uscc)
            )
        ).json()
        assert detail["source_application_id"] == application_id
        assert detail["source_application_no"] == approved.json()["application_no"]


async def test_false_commitment_bars_the_next_commitment_application(
    pair: tuple[FastAPI, FastAPI], tokens: Tokens
) -> None:
    license_app, approval_app = pair
    uscc = random_uscc()
    commitment_application = {
        "item_code": "JXW-CN-012",
        "applicant_name": "上海工业示范有限公司",
        "sign_commitment": True,
    }
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=approval_app), base_url=APPROVAL_URL
        ) as approval,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=license_app), base_url=LICENSE_URL
        ) as license_,
    ):
        # The commitment letter is signed on the phone with the enterprise's electronic seal.
        session_id = await sign_commitment(
            approval,
            headers=tokens.enterprise(uscc),
            uscc=uscc,
            item_code="JXW-CN-012",
            applicant_name="上海工业示范有限公司",
            ca_directory=dev_ca_directory(approval_app.state.settings.data_dir),
        )
        granted = await approval.post(
            "/api/v1/applications",
            json={**commitment_application, "commitment_signing_session": session_id},
            headers=tokens.enterprise(uscc),
        )
        assert granted.status_code == 201, granted.text
        assert granted.json()["state"] == "approved"
        while await approval_context_of(approval_app).relay.run_once():
            pass

        reviewer = tokens.staff(Role.REVIEWER, "310000")
        tasks = (
            await license_.get(
                "/api/v1/verification-tasks", params={"limit": 100}, headers=reviewer
            )
        ).json()["items"]
        [task] = [t for t in tasks if t["holder_uscc"] == uscc]
        failed = await license_.post(
            f"/api/v1/verification-tasks/{task['id']}/result",
            json={"outcome": "false_commitment", "findings": "企业承诺的生产条件并不存在"},
            headers=reviewer,
        )
        assert failed.status_code == 200, failed.text
        verdict = (
            await license_.get("/api/v1/licences/verify", params={"licence_no": task["licence_no"]})
        ).json()
        assert verdict["status"] == "revoked"

        refused = await approval.post(
            "/api/v1/applications", json=commitment_application, headers=tokens.enterprise(uscc)
        )
        assert refused.status_code in (409, 422), refused.text
        assert refused.json()["code"] == "commitment_not_allowed"
        # The ordinary route stays open.
        ordinary = await approval.post(
            "/api/v1/applications",
            json={**commitment_application, "sign_commitment": False},
            headers=tokens.enterprise(uscc),
        )
        assert ordinary.status_code == 201, ordinary.text
        assert ordinary.json()["state"] == "submitted"
