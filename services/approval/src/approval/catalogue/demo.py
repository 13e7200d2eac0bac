"""The demo catalogue of a municipal economy and informatization commission, shipped as data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.catalogue.repository import ItemRepository
from approval.catalogue.schemas import ItemCreate
from approval.models import ItemVersionStatus


def demo_items() -> list[ItemCreate]:
    """The items of ``data/demo_catalogue.json``, validated as an admin's input would be."""
    raw = (
        resources.files("approval.catalogue")
        .joinpath("data/demo_catalogue.json")
        .read_text("utf-8")
    )
    return [ItemCreate.model_validate(item) for item in json.loads(raw)["items"]]


def required_materials(code: str) -> list[str]:
    """The materials a demo item's guide requires (what acceptance checks for, Art. 32)."""
    item = next(i for i in demo_items() if i.code == code)
    return [m.name for m in item.guide.materials if m.required]


async def load_demo_catalogue(session: AsyncSession) -> int:
    """Insert the demo items that are missing, as published version 1 (idempotent)."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    for item in demo_items():
        values = item.model_dump(mode="json", by_alias=True, exclude={"change_note"})
        rows.append({**values, "version": 1, "updated_at": now})
        versions.append(
            {
                **{k: v for k, v in values.items()},
                "version": 1,
                "status": ItemVersionStatus.PUBLISHED.value,
                "change_note": "首次发布（演示目录）",
                "created_at": now,
                "created_by": "system:demo",
                "published_at": now,
            }
        )
    return await ItemRepository(session).insert_missing(rows, versions)
