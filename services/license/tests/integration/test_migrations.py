"""Migrations: one head; upgrade, downgrade, upgrade on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from govshared.migrate import alembic_config, downgrade, upgrade
from govshared.testing import BACKENDS, Tokens, drop_postgres_database, make_database
from licensing.config import Settings
from licensing.context import context_of
from licensing.db import outbox_events
from licensing.main import ALEMBIC_INI, create_app
from licensing.models import Base, Licence, LicenceCertificate, LicenceType

TABLES = {
    "reform_items",
    "reform_item_versions",
    "licence_types",
    "licences",
    "licence_history",
    "licence_certificates",
    "verification_tasks",
    "credit_records",
    "inspection_plans",
    "inspection_draws",
    "inspection_records",
    "inspector_conflicts",
    "inspections",
    "inspection_evidence",
    "inspection_proposals",
    "outbox_events",
    "inbox_events",
    "idempotency_keys",
}


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config(ALEMBIC_INI, "sqlite://"))
    assert len(script.get_heads()) == 1


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def _drift(url: str) -> list[object]:
    """Differences between the migrated schema and the models (autogenerate's view)."""
    engine = create_async_engine(url)
    async with engine.connect() as conn:

        def compare(sync_conn: Connection) -> list[object]:
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = await make_database(backend, prefix="license_mig", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        tables = await _tables(url)
        assert tables >= TABLES
        # The migration creates exactly what the models declare.
        assert tables - {"alembic_version"} == set(Base.metadata.tables)
        await asyncio.to_thread(downgrade, ALEMBIC_INI, url, "base")
        assert await _tables(url) <= {"alembic_version"}
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        assert await _tables(url) >= TABLES
        assert await _drift(url) == []
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_licences_issued_before_certificates_get_one_to_seal(
    backend: str, tmp_path: Path, tokens: Tokens, settings_maker: Callable[..., Settings]
) -> None:
    url = await make_database(backend, prefix="license_backfill", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url, "l0001_initial")
        engine = create_async_engine(url)
        now = datetime.now(UTC)
        current, superseded = uuid.uuid4(), uuid.uuid4()
        licence = {
            "licence_no": "YDP-2026-000001",
            "is_current": True,
            "licence_type": "salt_wholesale_certificate",
            "item_code": "JXW-XK-002",
            "holder_name": "上海盐业示范有限公司",
            "holder_uscc": "91350100M000100Y43",
            "issuing_authority": "上海市经济和信息化委员会",
            "jurisdiction": "310000",
            "issued_on": date(2026, 11, 1),
            "valid_from": date(2026, 11, 1),
            "valid_until": date(2031, 10, 31),
            "status": "valid",
            "particulars": {"仓储地址": "申江路1号"},
            "granted_on_commitment": False,
            "content_hash": "0" * 64,
            "renewal_reminders_sent": 0,
            "created_at": now,
            "updated_at": now,
        }
        async with engine.begin() as conn:
            await conn.execute(
                insert(LicenceType.__table__).values(
                    code="salt_wholesale_certificate",
                    name="食盐定点批发企业证书",
                    item_code="JXW-XK-002",
                    issuing_authority="上海市经济和信息化委员会",
                    validity_months=60,
                    number_prefix="YDP",
                )
            )
            await conn.execute(
                insert(Licence.__table__),
                [
                    {**licence, "id": superseded, "version": 1, "is_current": False},
                    {**licence, "id": current, "version": 2},
                ],
            )
        await engine.dispose()
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)

        app = create_app(settings_maker(url, tokens, tmp_path, approval_url=""))
        async with app.router.lifespan_context(app):
            async with app.state.sessionmaker() as session:
                [pending] = (await session.scalars(select(LicenceCertificate))).all()
            assert pending.licence_id == current and pending.version == 2
            assert pending.status == "pending" and pending.title == "食盐定点批发企业证书"
            assert pending.event_type is None
            assert (await context_of(app).sealer.run_once()).sealed == 1
            async with app.state.sessionmaker() as session:
                sealed = await session.get(LicenceCertificate, pending.id)
                events = (await session.execute(select(outbox_events))).all()
            assert sealed is not None and sealed.status == "sealed" and sealed.pdf_sha256
            # Its holder was told of the licence when it was issued: no new announcement.
            assert events == []
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_revoked_licences_migrate_to_revocation_then_cancellation(
    backend: str, tmp_path: Path
) -> None:
    """One ``revoked`` status becomes four acts: its old rows were 撤销 (Art. 69), and 注销 follows
    them and expiry (Art. 70); renewals accepted by the old rule stay protected."""
    url = await make_database(backend, prefix="license_acts", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url, "l0002_certificates")
        engine = create_async_engine(url)
        updated = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
        base = {
            "version": 1,
            "is_current": True,
            "licence_type": "salt_wholesale_certificate",
            "item_code": "JXW-XK-002",
            "holder_name": "上海盐业示范有限公司",
            "holder_uscc": "91350100M000100Y43",
            "issuing_authority": "上海市经济和信息化委员会",
            "jurisdiction": "310000",
            "issued_on": date(2021, 11, 1),
            "valid_from": date(2021, 11, 1),
            "valid_until": date(2026, 12, 20),
            "particulars": {},
            "granted_on_commitment": False,
            "content_hash": "0" * 64,
            "renewal_reminders_sent": 0,
            "created_at": updated,
            "updated_at": updated,
        }
        rows = {
            "revoked": {"status": "revoked"},
            "expired": {"status": "expired"},
            "pending": {"status": "valid", "renewal_requested_on": date(2026, 12, 1)},
        }
        async with engine.begin() as conn:
            await conn.execute(
                insert(LicenceType.__table__).values(
                    code="salt_wholesale_certificate",
                    name="食盐定点批发企业证书",
                    item_code="JXW-XK-002",
                    issuing_authority="上海市经济和信息化委员会",
                    validity_months=60,
                    number_prefix="YDP",
                )
            )
            for no, values in rows.items():
                await conn.execute(
                    insert(Licence.__table__).values(
                        id=uuid.uuid4(), licence_no=no, **{**base, **values}
                    )
                )
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        async with engine.connect() as conn:
            found = {r.licence_no: r for r in (await conn.execute(select(Licence.__table__))).all()}
        await engine.dispose()
        revoked, expired, pending = found["revoked"], found["expired"], found["pending"]
        assert revoked.status == "revoked" and revoked.cancellation_ground == "revoked"
        assert revoked.act_on == revoked.cancelled_on == date(2026, 11, 20)
        assert "第六十九条" in revoked.act_basis
        assert expired.cancellation_ground == "expired" and expired.act_on is None
        assert pending.renewal_timely is True and pending.cancelled_on is None
    finally:
        if backend == "postgresql":
            await drop_postgres_database(url)
