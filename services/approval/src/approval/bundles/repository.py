"""Bundles' SQL: the catalogue's bundles and versions, bundle applications and their members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.bundles.models import Bundle, BundleApplication, BundleMember, BundleVersion
from approval.models import Application, ItemVersionStatus
from govshared.jurisdictions import under_prefix
from govshared.sql import insert_ignore

bundles: Table = Bundle.__table__  # type: ignore[assignment]
bundle_versions: Table = BundleVersion.__table__  # type: ignore[assignment]
bundle_applications: Table = BundleApplication.__table__  # type: ignore[assignment]
bundle_members: Table = BundleMember.__table__  # type: ignore[assignment]


class BundleRepository:
    """Bundles in force and every version of them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> Bundle | None:
        """The bundle in force."""
        return await self.session.get(Bundle, code)

    async def search(
        self, *, jurisdiction: str | None, after_code: str | None, limit: int
    ) -> list[Bundle]:
        """Bundles in force, by code (keyset)."""
        query = select(Bundle)
        if jurisdiction:
            query = query.where(Bundle.jurisdiction == jurisdiction)
        if after_code:
            query = query.where(Bundle.code > after_code)
        return list((await self.session.scalars(query.order_by(Bundle.code).limit(limit))).all())

    async def version(self, code: str, version: int) -> BundleVersion | None:
        """One version."""
        return await self.session.get(BundleVersion, (code, version))

    async def versions(self, code: str) -> list[BundleVersion]:
        """Every version, oldest first."""
        query = select(BundleVersion).where(BundleVersion.code == code)
        return list((await self.session.scalars(query.order_by(BundleVersion.version))).all())

    async def latest_version_number(self, code: str) -> int:
        """The highest version number (0 if none)."""
        value = await self.session.scalar(
            select(func.max(BundleVersion.version)).where(BundleVersion.code == code)
        )
        return int(value or 0)

    async def add_version(self, row: dict[str, Any]) -> None:
        """Insert a version."""
        await self.session.execute(insert(bundle_versions).values(**row))

    async def replace_draft(self, code: str, version: int, values: dict[str, Any]) -> None:
        """Overwrite a draft (published versions are never edited)."""
        await self.session.execute(
            update(bundle_versions)
            .where(
                bundle_versions.c.code == code,
                bundle_versions.c.version == version,
                bundle_versions.c.status == ItemVersionStatus.DRAFT.value,
            )
            .values(**values)
        )

    async def publish(self, code: str, version: int, row: dict[str, Any], at: datetime) -> None:
        """Supersede the version in force, publish ``version`` and mirror it into ``bundles``."""
        await self.session.execute(
            update(bundle_versions)
            .where(
                bundle_versions.c.code == code,
                bundle_versions.c.status == ItemVersionStatus.PUBLISHED.value,
            )
            .values(status=ItemVersionStatus.SUPERSEDED.value)
        )
        await self.session.execute(
            update(bundle_versions)
            .where(bundle_versions.c.code == code, bundle_versions.c.version == version)
            .values(status=ItemVersionStatus.PUBLISHED.value, published_at=at)
        )
        if await self.session.get(Bundle, code) is None:
            await self.session.execute(insert(bundles).values(**row))
        else:
            await self.session.execute(update(bundles).where(bundles.c.code == code).values(**row))

    async def insert_missing(self, row: dict[str, Any], version: dict[str, Any]) -> int:
        """Insert a demo bundle unless its code is there (safe when replicas start together)."""
        result = await self.session.execute(
            insert_ignore(self.session, bundles, index_elements=["code"]).values(**row)
        )
        await self.session.execute(
            insert_ignore(self.session, bundle_versions, index_elements=["code", "version"]).values(
                **version
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class BundleApplicationRepository:
    """Bundle applications and the applications they fanned out to."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, row: dict[str, Any], members: list[dict[str, Any]]) -> None:
        """A bundle application and its members (after their applications)."""
        await self.session.execute(insert(bundle_applications).values(**row))
        await self.session.execute(insert(bundle_members), members)

    async def get(self, bundle_application_id: uuid.UUID) -> BundleApplication | None:
        """One bundle application."""
        return await self.session.get(BundleApplication, bundle_application_id)

    async def members(self, bundle_application_id: uuid.UUID) -> list[BundleMember]:
        """Its items in the bundle's order."""
        query = (
            select(BundleMember)
            .where(BundleMember.bundle_application_id == bundle_application_id)
            .order_by(BundleMember.position)
        )
        return list((await self.session.scalars(query)).all())

    async def member_applications(self, bundle_application_id: uuid.UUID) -> list[Application]:
        """The applications of its items in the bundle's order."""
        query = (
            select(Application)
            .join(BundleMember, BundleMember.application_id == Application.id)
            .where(BundleMember.bundle_application_id == bundle_application_id)
            .order_by(BundleMember.position)
        )
        return list((await self.session.scalars(query)).all())

    async def list_for_applicant(
        self, uscc: str, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[BundleApplication]:
        """An enterprise's bundle applications, newest first (keyset)."""
        query = select(BundleApplication).where(BundleApplication.applicant_uscc == uscc)
        return await self._newest_first(query, limit=limit, after=after)

    async def list_for_staff(
        self,
        *,
        jurisdiction_prefix: str | None,
        bundle_code: str | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[BundleApplication]:
        """Bundle applications with an item in the jurisdiction (all when no prefix), newest
        first (keyset)."""
        query = select(BundleApplication)
        if jurisdiction_prefix:
            query = query.where(
                select(BundleMember.application_id)
                .where(
                    BundleMember.bundle_application_id == BundleApplication.id,
                    under_prefix(BundleMember.jurisdiction, jurisdiction_prefix),
                )
                .exists()
            )
        if bundle_code:
            query = query.where(BundleApplication.bundle_code == bundle_code)
        return await self._newest_first(query, limit=limit, after=after)

    async def _newest_first(
        self,
        query: Select[BundleApplication],
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[BundleApplication]:
        if after is not None:
            at, last_id = after
            query = query.where(
                or_(
                    BundleApplication.submitted_at < at,
                    and_(BundleApplication.submitted_at == at, BundleApplication.id < last_id),
                )
            )
        query = query.order_by(
            BundleApplication.submitted_at.desc(), BundleApplication.id.desc()
        ).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def ready_to_decide(
        self, *, decided_states: frozenset[str], limit: int
    ) -> list[uuid.UUID]:
        """Bundle applications without their combined result whose items are all decided, oldest
        first (those still in progress are never scanned again and again)."""
        open_member = (
            select(BundleMember.application_id)
            .join(Application, Application.id == BundleMember.application_id)
            .where(
                BundleMember.bundle_application_id == BundleApplication.id,
                Application.state.not_in(sorted(decided_states)),
            )
            .exists()
        )
        query = (
            select(BundleApplication.id)
            .where(BundleApplication.decided_at.is_(None), ~open_member)
            .order_by(BundleApplication.submitted_at)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def mark_decided(
        self, bundle_application_id: uuid.UUID, *, outcome: str, at: datetime
    ) -> bool:
        """Record the combined result once; False when another run recorded it first."""
        result = await self.session.execute(
            update(bundle_applications)
            .where(
                bundle_applications.c.id == bundle_application_id,
                bundle_applications.c.decided_at.is_(None),
            )
            .values(decided_at=at, outcome=outcome)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
