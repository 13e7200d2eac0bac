"""SQL of the reform catalogue: the mode in force is one query, for one item or for all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.jurisdictions import ancestors
from govshared.sql import insert_ignore
from licensing.models import LicenceType, ReformItem, ReformItemVersion

V = ReformItemVersion


def _specificity(jurisdiction: str) -> ColumnElement[int]:
    """0 for the exact jurisdiction, rising towards the city-wide one (an own version wins)."""
    return case(
        {code: rank for rank, code in enumerate(ancestors(jurisdiction))},
        value=V.jurisdiction,
        else_=99,
    )


def _in_force(jurisdiction: str, on: date) -> Select[Any]:
    """Ids of the version in force per item for (jurisdiction, on), as a ranked subquery."""
    rank = func.row_number().over(
        partition_by=V.item_code,
        order_by=(_specificity(jurisdiction), V.effective_from.desc(), V.version.desc()),
    )
    return select(V.id.label("id"), rank.label("rank")).where(
        V.jurisdiction.in_(ancestors(jurisdiction)), V.effective_from <= on
    )


class CatalogueRepository:
    """Reads and appends reform items and their versions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_item(self, code: str) -> ReformItem | None:
        """The item, or None."""
        return await self.session.get(ReformItem, code)

    async def mode_in_force(
        self, *, item_code: str, jurisdiction: str, on: date
    ) -> ReformItemVersion | None:
        """The latest version effective on ``on``, the jurisdiction's own before an inherited one."""
        query = (
            select(V)
            .where(
                V.item_code == item_code,
                V.jurisdiction.in_(ancestors(jurisdiction)),
                V.effective_from <= on,
            )
            .order_by(_specificity(jurisdiction), V.effective_from.desc(), V.version.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def list_in_force(
        self,
        *,
        jurisdiction: str,
        on: date,
        mode: str | None = None,
        keyword: str | None = None,
        after_code: str | None = None,
        limit: int,
    ) -> Sequence[tuple[ReformItem, ReformItemVersion]]:
        """Items with their version in force, by code (keyset on the code)."""
        ranked = _in_force(jurisdiction, on).subquery()
        query = (
            select(ReformItem, V)
            .join(V, V.item_code == ReformItem.code)
            .join(ranked, and_(ranked.c.id == V.id, ranked.c.rank == 1))
            .order_by(ReformItem.code)
            .limit(limit)
        )
        if mode is not None:
            query = query.where(V.mode == mode)
        if keyword:
            query = query.where(
                or_(
                    ReformItem.name.contains(keyword, autoescape=True),
                    ReformItem.code.contains(keyword.upper(), autoescape=True),
                )
            )
        if after_code is not None:
            query = query.where(ReformItem.code > after_code)
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]

    async def count_by_mode(self, *, jurisdiction: str, on: date) -> dict[str, tuple[int, int]]:
        """Per mode: items in force, and how many of them by the jurisdiction's own version."""
        ranked = _in_force(jurisdiction, on).subquery()
        own = func.sum(case((V.jurisdiction == jurisdiction, 1), else_=0))
        query = (
            select(V.mode, func.count(), own)
            .join(ranked, and_(ranked.c.id == V.id, ranked.c.rank == 1))
            .group_by(V.mode)
        )
        rows = (await self.session.execute(query)).all()
        return {mode: (int(count), int(own_count or 0)) for mode, count, own_count in rows}

    async def jurisdictions(self) -> list[str]:
        """Every jurisdiction that has a version of its own."""
        rows = await self.session.scalars(
            select(V.jurisdiction).distinct().order_by(V.jurisdiction)
        )
        return list(rows)

    async def effective_dates(self, *, jurisdiction: str, on: date) -> list[date]:
        """The dates on which a version relevant to the jurisdiction took effect, up to ``on``."""
        rows = await self.session.scalars(
            select(V.effective_from)
            .where(V.jurisdiction.in_(ancestors(jurisdiction)), V.effective_from <= on)
            .distinct()
            .order_by(V.effective_from)
        )
        return list(rows)

    async def versions(self, item_code: str) -> Sequence[ReformItemVersion]:
        """Every version of an item, oldest first."""
        rows = await self.session.scalars(
            select(V).where(V.item_code == item_code).order_by(V.version)
        )
        return rows.all()

    async def next_version(self, item_code: str) -> int:
        """The number the item's next version takes."""
        latest = await self.session.scalar(
            select(func.max(V.version)).where(V.item_code == item_code)
        )
        return int(latest or 0) + 1

    async def version_exists(
        self, *, item_code: str, jurisdiction: str, effective_from: date
    ) -> bool:
        """True when the item already has a version for that jurisdiction and date."""
        found = await self.session.scalar(
            select(V.id).where(
                V.item_code == item_code,
                V.jurisdiction == jurisdiction,
                V.effective_from == effective_from,
            )
        )
        return found is not None

    def add(self, row: ReformItem | ReformItemVersion) -> None:
        """Stage a new row."""
        self.session.add(row)

    async def insert_missing(
        self,
        *,
        items: list[dict[str, Any]],
        versions: list[dict[str, Any]],
        licence_types: list[dict[str, Any]],
    ) -> int:
        """Insert shipped rows that are not there yet (idempotent); the number of versions added."""
        session = self.session
        if items:
            await session.execute(
                insert_ignore(session, ReformItem.__table__, index_elements=["code"]),  # type: ignore[arg-type]
                items,
            )
        if licence_types:
            await session.execute(
                insert_ignore(session, LicenceType.__table__, index_elements=["code"]),  # type: ignore[arg-type]
                licence_types,
            )
        added = 0
        for version in versions:
            result = await session.execute(
                insert_ignore(
                    session,
                    V.__table__,  # type: ignore[arg-type]
                    index_elements=["item_code", "version"],
                ).values(**version)
            )
            added += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return added
