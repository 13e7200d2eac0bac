"""Catalogue use cases: search, versions, admin create/revise/publish, statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.catalogue.schemas import (
    CatalogueStatistics,
    ItemCreate,
    ItemDraft,
    ModeCount,
)
from approval.errors import ItemExists, ItemNotFound, ItemVersionNotFound, NoDraftToPublish
from approval.models import Item, ItemVersion, ItemVersionStatus
from govshared.auth import Principal
from govshared.events import REFORM_MODE_LABELS, ReformMode

IN_FORCE_FIELDS = (
    "name",
    "item_type",
    "authority",
    "jurisdiction",
    "is_instant",
    "statutory_limit_days",
    "committed_limit_days",
    "reform_mode",
    "guide",
)


def _draft_values(draft: ItemDraft) -> dict[str, Any]:
    values = draft.model_dump(mode="json", exclude={"code", "change_note"}, by_alias=True)
    values["change_note"] = draft.change_note
    return values


class CatalogueService:
    """The catalogue of items and their versioned guides."""

    def __init__(self, session: AsyncSession) -> None:
        self.items = ItemRepository(session)

    async def get(self, code: str) -> Item:
        """The item in force (404 problem otherwise)."""
        item = await self.items.get(code)
        if item is None:
            raise ItemNotFound(f"事项编码 {code} 不在事项目录中", item_code=code)
        return item

    async def version(self, code: str, version: int) -> ItemVersion:
        """One version of the guide."""
        found = await self.items.version(code, version)
        if found is None:
            raise ItemVersionNotFound(f"事项 {code} 没有第 {version} 版办事指南")
        return found

    async def history(self, code: str) -> list[ItemVersion]:
        """Every version, oldest first."""
        versions = await self.items.versions(code)
        if not versions:
            raise ItemNotFound(f"事项编码 {code} 不在事项目录中", item_code=code)
        return versions

    async def create(self, *, body: ItemCreate, actor: Principal) -> ItemVersion:
        """A new item: version 1 as a draft, not in force until published."""
        if await self.items.latest_version_number(body.code):
            raise ItemExists(f"事项编码 {body.code} 已存在", item_code=body.code)
        await self.items.add_version(
            {
                "code": body.code,
                "version": 1,
                "status": ItemVersionStatus.DRAFT.value,
                **_draft_values(body),
                "created_at": datetime.now(UTC),
                "created_by": actor.subject,
                "published_at": None,
            }
        )
        return await self.version(body.code, 1)

    async def revise(self, *, code: str, body: ItemDraft, actor: Principal) -> ItemVersion:
        """Write the next version as a draft (or rewrite the pending draft)."""
        versions = await self.history(code)
        latest = versions[-1]
        if latest.status == ItemVersionStatus.DRAFT.value:
            await self.items.replace_draft(code, latest.version, _draft_values(body))
            number = latest.version
        else:
            number = latest.version + 1
            await self.items.add_version(
                {
                    "code": code,
                    "version": number,
                    "status": ItemVersionStatus.DRAFT.value,
                    **_draft_values(body),
                    "created_at": datetime.now(UTC),
                    "created_by": actor.subject,
                    "published_at": None,
                }
            )
        self.items.session.expire_all()
        return await self.version(code, number)

    async def publish(self, *, code: str) -> Item:
        """Put the pending draft in force; applications keep the version they were submitted under."""
        versions = await self.history(code)
        draft = versions[-1]
        if draft.status != ItemVersionStatus.DRAFT.value:
            raise NoDraftToPublish(f"事项 {code} 没有待发布的草稿")
        now = datetime.now(UTC)
        await self.items.supersede_published(code)
        await self.items.mark_published(code, draft.version, {"published_at": now})
        await self.items.put_in_force(
            {
                "code": code,
                **{f: getattr(draft, f) for f in IN_FORCE_FIELDS},
                "version": draft.version,
                "updated_at": now,
            }
        )
        self.items.session.expire_all()
        ITEM_CACHE.forget(code)
        return await self.get(code)

    async def statistics(self) -> CatalogueStatistics:
        """Computed from the items in force, never stored."""
        items = await self.items.all()
        total = len(items)
        counts: dict[str | None, int] = {}
        for item in items:
            counts[item.reform_mode] = counts.get(item.reform_mode, 0) + 1
        by_mode = [
            ModeCount(
                mode=ReformMode(mode) if mode else None,
                label=REFORM_MODE_LABELS[ReformMode(mode)] if mode else "未纳入证照分离改革",
                items=n,
            )
            for mode, n in sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ]
        instant = sum(1 for i in items if i.is_instant)
        reduced = sum(1 for i in items if i.committed_limit_days < i.statutory_limit_days)
        return CatalogueStatistics(
            items=total,
            by_reform_mode=by_mode,
            instant_items=instant,
            instant_share=round(instant / total, 4) if total else 0.0,
            reduced_limit_items=reduced,
            reduced_limit_share=round(reduced / total, 4) if total else 0.0,
        )
