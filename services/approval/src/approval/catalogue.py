"""The demo catalogue of a municipal economy and informatization commission, shipped as data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.repository import ItemRepository


def demo_items() -> list[dict[str, Any]]:
    """The items of ``data/demo_catalogue.json``."""
    raw = resources.files("approval").joinpath("data/demo_catalogue.json").read_text("utf-8")
    items: list[dict[str, Any]] = json.loads(raw)["items"]
    return items


async def load_demo_catalogue(session: AsyncSession) -> int:
    """Insert the demo items that are missing (idempotent); the number inserted."""
    now = datetime.now(UTC)
    rows = [{**item, "version": 1, "updated_at": now} for item in demo_items()]
    return await ItemRepository(session).insert_missing(rows)
