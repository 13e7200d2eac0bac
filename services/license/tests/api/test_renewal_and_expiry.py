"""Renewal window, reminders, deemed renewal (Art. 50) and expiry across the licence timer.

Timers act on every licence they find, so each test runs on a database of its own; "today" is moved
by replacing ``licensing.clock.today``, which the service and the routes both read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from govshared.auth import Role
from govshared.seal.pdf import china_date_text, extract_text
from govshared.testing import Tokens, problem, random_uscc
from licensing import clock
from licensing.db import outbox_events

Issue = Callable[..., Awaitable[str]]
Issuer = Callable[[httpx.AsyncClient, Tokens, FastAPI], Issue]
FreshApp = Callable[[], AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


async def _events(app: FastAPI, licence_no: str, kind: str) -> dict[str, Any]:
    async with app.state.sessionmaker() as s:
        payloads = (
            await s.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.payload.contains(licence_no))
                .where(outbox_events.c.destination == "notify")
                .where(outbox_events.c.event_type == f"cn.gov.license.licence.{kind}.v1")
            )
        ).scalars()
        [event] = [json.loads(p) for p in payloads]
    return dict(event)


async def _event_types(app: FastAPI, licence_no: str) -> list[str]:
    async with app.state.sessionmaker() as s:
        rows = (
            await s.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.payload.contains(licence_no))
                .where(outbox_events.c.destination == "notify")
                .order_by(outbox_events.c.created_at)
            )
        ).all()
    return [json.loads(r.payload)["type"].split(".")[-2] for r in rows]


def _set_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    monkeypatch.setattr(clock, "today", lambda: day)


async def test_renewal_pending_at_expiry_is_deemed_granted(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        licence = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        valid_until = date.fromisoformat(licence["valid_until"])
        assert licence["renewal_window_opens_on"] == (valid_until - timedelta(days=30)).isoformat()

        _set_today(monkeypatch, valid_until - timedelta(days=40))
        early = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert early.status_code == 409
        assert problem(early)["code"] == "renewal_window_closed"

        # Reminders at 30 and 7 days before expiry, once each.
        timers = app.state.timers
        assert (await timers.run_once(valid_until - timedelta(days=31))).reminded == 0
        assert (await timers.run_once(valid_until - timedelta(days=30))).reminded == 1
        assert (await timers.run_once(valid_until - timedelta(days=29))).reminded == 0

        _set_today(monkeypatch, valid_until - timedelta(days=10))
        requested = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert requested.status_code == 200, requested.text
        assert (
            requested.json()["renewal_requested_on"]
            == (valid_until - timedelta(days=10)).isoformat()
        )
        # A pending renewal silences the reminders.
        assert (await timers.run_once(valid_until - timedelta(days=7))).reminded == 0

        on_last_day = await timers.run_once(valid_until)
        assert (on_last_day.expired, on_last_day.deemed_renewed) == (0, 0)
        _set_today(monkeypatch, valid_until + timedelta(days=1))
        at_expiry = await timers.run_once(valid_until + timedelta(days=1))
        assert (at_expiry.expired, at_expiry.deemed_renewed) == (0, 1)
        # The renewal is announced once its certificate is sealed (by the worker's sealer).
        assert "renewed" not in await _event_types(app, licence_no)
        assert (await app.state.sealer.run_once()).sealed == 1
        assert (await timers.run_once(valid_until + timedelta(days=1))).deemed_renewed == 0

        renewed = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        assert renewed["version"] == 2 and renewed["status"] == "valid"
        assert renewed["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        assert date.fromisoformat(renewed["valid_until"]) > valid_until + timedelta(days=1800)
        assert [h["action"] for h in renewed["history"]] == [
            "issued",
            "renewal_requested",
            "superseded",
            "deemed_renewed",
        ]
        assert "第五十条" in renewed["history"][-1]["reason"]
        check = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert check["result"] == "valid"
        assert await _event_types(app, licence_no) == ["issued", "renewal_due", "renewed"]

        # The deemed renewal's own sealed certificate, named by its event, verifies as valid.
        certificate = renewed["certificate"]
        assert certificate["status"] == "sealed" and certificate["version"] == 2
        pdf = (await client.get(f"/api/v1/licences/{licence_no}/pdf", headers=holder)).content
        assert hashlib.sha256(pdf).hexdigest() == certificate["pdf_sha256"]
        text = "".join(extract_text(pdf).split())
        assert "（电子证照第2版）" in text and licence_no in text
        assert f"{china_date_text(renewed['valid_from'])}至" in text
        renewed_event = await _events(app, licence_no, "renewed")
        assert renewed_event["data"]["document"]["document_id"] == certificate["id"]
        assert renewed_event["data"]["reason"].endswith("视为准予延续")
        verified = await client.post(
            "/api/v1/licences/verify", files={"file": ("l.pdf", pdf, "application/pdf")}
        )
        assert verified.json()["result"] == "valid" and verified.json()["version"] == 2


async def test_licence_without_renewal_expires_on_the_timer(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        licence = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        valid_until = date.fromisoformat(licence["valid_until"])

        _set_today(monkeypatch, valid_until + timedelta(days=1))
        # Until the timer runs, the verdict already reads the date: not valid after the last day.
        stale = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert stale["result"] == "not_valid" and stale["status"] == "valid"
        run = await app.state.timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (1, 0)
        expired = (
            await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        ).json()
        assert expired["status"] == "expired" and expired["status_label"] == "已过期"
        late = await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        assert late.status_code == 409
        assert await _event_types(app, licence_no) == ["issued", "expired"]
        summary = (
            await client.get(
                f"/api/v1/enterprises/{uscc}/licences", headers=tokens.header(Role.SERVICE)
            )
        ).json()
        assert summary["items"][0]["status"] == "expired"


async def test_renewal_decided_before_expiry(
    fresh_app: FreshApp, issuer: Issuer, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_app() as (app, client):
        uscc = random_uscc()
        licence_no = await issuer(client, tokens, app)(uscc=uscc)
        holder = tokens.enterprise(uscc)
        approver = tokens.staff(Role.APPROVER, "310000")
        licence = (await client.get(f"/api/v1/licences/{licence_no}", headers=holder)).json()
        valid_until = date.fromisoformat(licence["valid_until"])
        _set_today(monkeypatch, valid_until - timedelta(days=20))

        not_pending = await client.post(
            f"/api/v1/licences/{licence_no}/renewal/decision",
            json={"grant": True, "reason": "准予延续"},
            headers=approver,
        )
        assert not_pending.status_code == 409
        assert problem(not_pending)["code"] == "renewal_not_pending"
        await client.post(f"/api/v1/licences/{licence_no}/renewal", headers=holder)
        granted = await client.post(
            f"/api/v1/licences/{licence_no}/renewal/decision",
            json={"grant": True, "reason": "经审查符合延续条件"},
            headers=approver,
        )
        assert granted.status_code == 200, granted.text
        assert granted.json()["version"] == 2
        assert granted.json()["valid_from"] == (valid_until + timedelta(days=1)).isoformat()
        run = await app.state.timers.run_once(valid_until + timedelta(days=1))
        assert (run.expired, run.deemed_renewed) == (0, 0)
