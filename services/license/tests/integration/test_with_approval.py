"""Issue 5's cross-service path in one process: approval's real app decides, its relay delivers the
approved event to license's real app, and license issues the licence exactly once; what license
records after the grant (a false commitment, a missed inspection correction) bars the holder's next
告知承诺 application at approval.

Both apps run their real lifespans on databases of their own; HTTP between them goes through
``httpx.ASGITransport`` mounted on each other's URL, so no sockets and no stand-ins are involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

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
from govshared.testing import (
    BACKENDS,
    Tokens,
    drop_postgres_database,
    make_database,
    problem,
    random_uscc,
)
from licensing import clock as licensing_clock
from licensing.config import Settings
from licensing.context import context_of as license_context_of
from licensing.main import ALEMBIC_INI, create_app
from notify.config import Settings as NotifySettings
from notify.main import ALEMBIC_INI as NOTIFY_ALEMBIC_INI
from notify.main import create_app as create_notify_app

LICENSE_URL = "http://license.test"
APPROVAL_URL = "http://approval.test"
NOTIFY_URL = "http://notify.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@asynccontextmanager
async def wired(
    backend: str,
    tokens: Tokens,
    tmp_path: Path,
    settings_maker: Callable[..., Settings],
    *,
    real_notify: bool,
) -> AsyncIterator[tuple[FastAPI, FastAPI, FastAPI | None]]:
    """License and approval, each on its own database of the backend, wired to each other; with
    ``real_notify`` notify's real app too, where both relays post their events (otherwise notify
    is a stand-in that accepts everything)."""
    names = ["license", "approval", *(["notify"] if real_notify else [])]
    urls = [
        await make_database(backend, prefix=f"pair_{name}", directory=tmp_path) for name in names
    ]
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, urls[0])
        await asyncio.to_thread(upgrade, APPROVAL_ALEMBIC_INI, urls[1])
        notify: httpx.AsyncBaseTransport = httpx.MockTransport(lambda _: httpx.Response(200))
        notify_app = None
        if real_notify:
            await asyncio.to_thread(upgrade, NOTIFY_ALEMBIC_INI, urls[2])
            notify_app = create_notify_app(
                NotifySettings(
                    environment="test",
                    database_url=urls[2],
                    data_dir=tmp_path / "notify",
                    **tokens.settings(),  # type: ignore[arg-type]
                    migrate_on_start=False,
                    run_workers=False,
                    log_json=False,
                    log_level="WARNING",
                )
            )
            notify = httpx.ASGITransport(app=notify_app)
        license_app = create_app(
            settings_maker(
                urls[0],
                tokens,
                tmp_path,
                approval_url="",
                notify_events_url=f"{NOTIFY_URL}/api/v1/events",
            ),
            http_mounts={NOTIFY_URL: notify},
        )
        approval_settings = ApprovalSettings(
            environment="test",
            database_url=urls[1],
            data_dir=tmp_path,
            **tokens.settings(),  # type: ignore[arg-type]
            migrate_on_start=False,
            run_workers=False,
            license_url=LICENSE_URL,
            license_events_url=f"{LICENSE_URL}/api/v1/events",
            notify_events_url=f"{NOTIFY_URL}/api/v1/events",
            reform_mode_cache_seconds=0,
            log_json=False,
            log_level="WARNING",
        )
        approval_app = create_approval_app(
            approval_settings,
            http_mounts={LICENSE_URL: httpx.ASGITransport(app=license_app), NOTIFY_URL: notify},
        )
        async with AsyncExitStack() as stack:
            if notify_app is not None:
                await stack.enter_async_context(notify_app.router.lifespan_context(notify_app))
            await stack.enter_async_context(license_app.router.lifespan_context(license_app))
            await stack.enter_async_context(approval_app.router.lifespan_context(approval_app))
            yield license_app, approval_app, notify_app
    finally:
        if backend == "postgresql":
            for url in urls:
                await drop_postgres_database(url)


@pytest.fixture(params=BACKENDS)
async def pair(
    request: pytest.FixtureRequest,
    tokens: Tokens,
    tmp_path: Path,
    settings_maker: Callable[..., Settings],
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """License and approval wired to each other (notify a stand-in)."""
    async with wired(request.param, tokens, tmp_path, settings_maker, real_notify=False) as apps:
        yield apps[0], apps[1]


@pytest.fixture(params=BACKENDS)
async def trio(
    request: pytest.FixtureRequest,
    tokens: Tokens,
    tmp_path: Path,
    settings_maker: Callable[..., Settings],
) -> AsyncIterator[tuple[FastAPI, FastAPI, FastAPI]]:
    """License, approval and notify, wired to each other."""
    async with wired(request.param, tokens, tmp_path, settings_maker, real_notify=True) as apps:
        assert apps[2] is not None
        yield apps[0], apps[1], apps[2]


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
        held = await license_.get(f"/api/v1/enterprises/{uscc}/licences", headers=tokens.service())
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
            headers=tokens.staff(Role.APPROVER, "310000"),
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


async def test_a_missed_inspection_correction_bars_the_next_commitment_application(
    trio: tuple[FastAPI, FastAPI, FastAPI], tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20's chain, the two services' REST APIs alone but for the timer's tick: a licence
    approval decided is drawn in a 双随机 plan, a finding orders 限期整改, nobody finds it put right
    by the re-inspection's due date, the timer records the serious credit record and proposes an
    act, the next draw puts the holder in class D, and approval, asking license as it does at
    submission, refuses the holder the 告知承诺 route (国办发〔2020〕42号). License's relay posts its
    notices to notify: the holder reads each in its inbox, the jurisdiction's approvers the
    proposal to carry out."""
    license_app, approval_app, notify_app = trio
    uscc = random_uscc()
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=approval_app), base_url=APPROVAL_URL
        ) as approval,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=license_app), base_url=LICENSE_URL
        ) as license_,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=notify_app), base_url=NOTIFY_URL
        ) as notify,
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
        case = f"/api/v1/applications/{submitted.json()['id']}"
        for path, role, body in (
            (
                "accept",
                Role.ACCEPTOR,
                {
                    "tolerated_materials": required_materials("JXW-XK-002"),
                    "deliver_by": "2099-12-31",
                },
            ),
            ("review", Role.REVIEWER, {"opinion": "同意"}),
            ("approve", Role.APPROVER, {"opinion": "准予许可"}),
        ):
            done = await approval.post(f"{case}/{path}", json=body, headers=tokens.staff(role))
            assert done.status_code == 200, done.text
        while await approval_context_of(approval_app).relay.run_once():
            pass

        approver = tokens.staff(Role.APPROVER, "310000")
        reviewer = tokens.staff(Role.REVIEWER, "310000")
        today = licensing_clock.today()

        async def draw(ratios: dict[str, float]) -> dict[str, Any]:
            plan = await license_.post(
                "/api/v1/inspection-plans",
                json={
                    "name": "食盐批发许可双随机抽查",
                    "item_codes": ["JXW-XK-002"],
                    "jurisdiction": "310000",
                    "period_from": today.isoformat(),
                    "period_to": (today + timedelta(days=90)).isoformat(),
                    "ratios": ratios,
                    "inspectors": ["执法人员甲", "执法人员乙", "执法人员丙"],
                },
                headers=approver,
            )
            assert plan.status_code == 201, plan.text
            drawn = await license_.post(
                f"/api/v1/inspection-plans/{plan.json()['id']}/draw", headers=approver
            )
            assert drawn.status_code == 200, drawn.text
            return dict(drawn.json())

        first = await draw({"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0})
        assert [(t[0], t[1]) for t in first["draw"]["targets"]] == [(uscc, "A")]
        listed = await license_.get(f"/api/v1/inspections?plan={first['id']}", headers=reviewer)
        [task] = listed.json()["items"]
        uploaded = await license_.post(
            f"/api/v1/inspections/{task['id']}/evidence",
            files={"file": ("现场检查记录.png", PNG, "image/png")},
            headers=reviewer,
        )
        assert uploaded.status_code == 201, uploaded.text
        rectify_by = today + timedelta(days=10)
        ordered = await license_.post(
            f"/api/v1/inspections/{task['id']}/result",
            json={
                "outcome": "non_compliant",
                "inspected_on": today.isoformat(),
                "findings": "食盐储存场所不符合防潮要求",
                "severity": "minor",
                "rectify_by": rectify_by.isoformat(),
            },
            headers=reviewer,
        )
        assert ordered.status_code == 200, ordered.text
        assert ordered.json()["correction_status"] == "open"

        # Nobody re-inspects: past the re-inspection's due date, the worker's timer ticks.
        reinspection = await license_.get(
            f"/api/v1/inspections?plan={first['id']}&status=open", headers=reviewer
        )
        [open_task] = reinspection.json()["items"]
        after = date.fromisoformat(open_task["due_on"]) + timedelta(days=1)
        monkeypatch.setattr(licensing_clock, "today", lambda: after)
        await license_context_of(license_app).timers.run_once()
        order = await license_.get(f"/api/v1/inspections/{task['id']}", headers=reviewer)
        assert order.json()["correction_status"] == "missed"
        [proposal] = order.json()["proposals"]
        assert proposal["act"] == "suspension"
        assert proposal["act_endpoint"].endswith("/penalty-notices")

        # The notices reach notify: the holder's inbox, and the approvers' for the proposal.
        while await license_context_of(license_app).relay.run_once():
            pass
        inbox = await notify.get(
            "/api/v1/inbox", params={"limit": 100}, headers=tokens.enterprise(uscc)
        )
        assert inbox.status_code == 200, inbox.text
        received = {m["event_type"]: m for m in inbox.json()["items"]}
        assert {
            "cn.gov.license.licence.inspection_scheduled.v1",
            "cn.gov.license.licence.inspected.v1",
            "cn.gov.license.licence.rectification_missed.v1",
        } <= set(received)
        assert received["cn.gov.license.licence.inspected.v1"]["critical"] is True
        missed = received["cn.gov.license.licence.rectification_missed.v1"]
        assert missed["critical"] is True and "暂扣许可证件" in missed["body"]
        staff = await notify.get("/api/v1/inbox", headers=tokens.staff(Role.APPROVER, "310000"))
        assert "cn.gov.license.licence.rectification_missed.v1" in {
            m["event_type"] for m in staff.json()["items"]
        }

        # The next plan sees the holder as high risk.
        second = await draw({"A": 0.0, "B": 0.0, "C": 0.0, "D": 1.0})
        assert [(t[0], t[1]) for t in second["draw"]["targets"]] == [(uscc, "D")]

        # Approval asks license at submission, and refuses the commitment route.
        session_id = await sign_commitment(
            approval,
            headers=tokens.enterprise(uscc),
            uscc=uscc,
            item_code="JXW-CN-012",
            applicant_name="上海盐业示范有限公司",
            ca_directory=dev_ca_directory(approval_app.state.settings.data_dir),
        )
        refused = await approval.post(
            "/api/v1/applications",
            json={
                "item_code": "JXW-CN-012",
                "applicant_name": "上海盐业示范有限公司",
                "sign_commitment": True,
                "commitment_signing_session": session_id,
            },
            headers=tokens.enterprise(uscc),
        )
        assert refused.status_code == 422, refused.text
        assert problem(refused)["code"] == "commitment_not_allowed"
        assert any("责令限期整改逾期未改正" in r for r in problem(refused)["reasons"])
