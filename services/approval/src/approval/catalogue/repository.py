"""The catalogue's SQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Item, ItemVersion, ItemVersionStatus
from govshared.sql import database_key, insert_ignore

items: Table = Item.__table__  # type: ignore[assignment]
item_versions: Table = ItemVersion.__table__  # type: ignore[assignment]


class ItemCache:
    """Items in force, kept for the submission hot path for a few seconds.

    A publication in this process forgets the item at once; another replica's publication shows
    here within ``ttl_seconds``. Applications record the version they were submitted under, so a
    submission in that window keeps the version in force when it was checked.
    """

    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self._ttl = ttl_seconds
        self._items: dict[tuple[str, str], tuple[float, Item | None]] = {}

    async def get(self, repository: ItemRepository, code: str) -> Item | None:
        """The item, from the cache while fresh, else from the database."""
        key = (database_key(repository.session), code)
        cached = self._items.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        item = await repository.get(code)
        if item is not None:
            repository.session.expunge(item)  # a read-only snapshot, never written through
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[key] = (now, item)
        return item

    def forget(self, code: str) -> None:
        """Drop an item after this process published a new version of it."""
        for key in [k for k in self._items if k[1] == code]:
            del self._items[key]


class ItemVersionCache:
    """Published versions of service guides, kept for good: a version an application was submitted
    under never changes (only drafts are edited, and no application is submitted under one)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._versions: dict[tuple[str, str, int], ItemVersion] = {}

    async def get(self, repository: ItemRepository, code: str, version: int) -> ItemVersion | None:
        """The version, from the cache, else from the database (a draft is never kept)."""
        key = (database_key(repository.session), code, version)
        found = self._versions.get(key)
        if found is not None:
            return found
        found = await repository.version(code, version)
        if found is None or found.status == ItemVersionStatus.DRAFT:
            return found
        repository.session.expunge(found)  # a read-only snapshot, never written through
        if len(self._versions) >= self._max:
            self._versions.clear()
        self._versions[key] = found
        return found


class ItemRepository:
    """Items in force and every version of their guides."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> Item | None:
        """The item in force."""
        return await self.session.get(Item, code)

    async def search(
        self,
        *,
        item_type: str | None = None,
        reform_mode: str | None = None,
        authority: str | None = None,
        is_instant: bool | None = None,
        keyword: str | None = None,
        jurisdiction: str | None = None,
        after_code: str | None = None,
        limit: int = 100,
    ) -> list[Item]:
        """Items in force matching the filters, by code (keyset)."""
        query = select(Item)
        if item_type:
            query = query.where(Item.item_type == item_type)
        if reform_mode:
            query = query.where(Item.reform_mode == reform_mode)
        if authority:
            query = query.where(Item.authority.contains(authority, autoescape=True))
        if is_instant is not None:
            query = query.where(Item.is_instant.is_(is_instant))
        if jurisdiction:
            query = query.where(Item.jurisdiction == jurisdiction)
        if keyword:
            query = query.where(
                or_(
                    Item.name.contains(keyword, autoescape=True),
                    Item.authority.contains(keyword, autoescape=True),
                    Item.code.contains(keyword.upper(), autoescape=True),
                )
            )
        if after_code:
            query = query.where(Item.code > after_code)
        return list((await self.session.scalars(query.order_by(Item.code).limit(limit))).all())

    async def all(self) -> list[Item]:
        """Every item in force."""
        return list((await self.session.scalars(select(Item).order_by(Item.code))).all())

    async def version(self, code: str, version: int) -> ItemVersion | None:
        """One version of an item's guide."""
        return await self.session.get(ItemVersion, (code, version))

    async def versions(self, code: str) -> list[ItemVersion]:
        """The change history, oldest first."""
        query = select(ItemVersion).where(ItemVersion.code == code).order_by(ItemVersion.version)
        return list((await self.session.scalars(query)).all())

    async def latest_version_number(self, code: str) -> int:
        """The highest version number of an item (0 if none)."""
        value = await self.session.scalar(
            select(func.max(ItemVersion.version)).where(ItemVersion.code == code)
        )
        return int(value or 0)

    async def add_version(self, row: dict[str, Any]) -> None:
        """Insert a version."""
        await self.session.execute(insert(item_versions).values(**row))

    async def replace_draft(self, code: str, version: int, values: dict[str, Any]) -> None:
        """Overwrite a draft (published versions are never edited)."""
        await self.session.execute(
            update(item_versions)
            .where(
                item_versions.c.code == code,
                item_versions.c.version == version,
                item_versions.c.status == ItemVersionStatus.DRAFT.value,
            )
            .values(**values)
        )

    async def supersede_published(self, code: str) -> None:
        """Mark the version in force as superseded."""
        await self.session.execute(
            update(item_versions)
            .where(
                item_versions.c.code == code,
                item_versions.c.status == ItemVersionStatus.PUBLISHED.value,
            )
            .values(status=ItemVersionStatus.SUPERSEDED.value)
        )

    async def mark_published(self, code: str, version: int, values: dict[str, Any]) -> None:
        """Mark a version as the one in force."""
        await self.session.execute(
            update(item_versions)
            .where(item_versions.c.code == code, item_versions.c.version == version)
            .values(status=ItemVersionStatus.PUBLISHED.value, **values)
        )

    async def put_in_force(self, row: dict[str, Any]) -> None:
        """Insert or replace the ``items`` row of an item."""
        existing = await self.session.get(Item, row["code"])
        if existing is None:
            await self.session.execute(insert(items).values(**row))
        else:
            await self.session.execute(
                update(items).where(items.c.code == row["code"]).values(**row)
            )

    async def insert_missing(
        self, rows: list[dict[str, Any]], versions: list[dict[str, Any]]
    ) -> int:
        """Insert the demo items whose code is not there yet (safe when replicas start together)."""
        inserted = 0
        for row in rows:
            result = await self.session.execute(
                insert_ignore(self.session, items, index_elements=["code"]).values(**row)
            )
            inserted += result.rowcount  # type: ignore[attr-defined]
        for version in versions:
            await self.session.execute(
                insert_ignore(
                    self.session, item_versions, index_elements=["code", "version"]
                ).values(**version)
            )
        return inserted


ITEM_CACHE = ItemCache()
ITEM_VERSIONS = ItemVersionCache()
