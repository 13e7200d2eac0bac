"""Bundles in the catalogue: published and versioned like items (approval.catalogue)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.bundles.errors import (
    BundleDefinitionInvalid,
    BundleExists,
    BundleNotFound,
    BundleVersionNotFound,
    NoBundleDraft,
)
from approval.bundles.models import Bundle, BundleVersion
from approval.bundles.repository import BundleRepository
from approval.bundles.schemas import BundleCreate, BundleDefinition, BundleDraft
from approval.catalogue.repository import ItemRepository
from approval.models import ItemVersionStatus
from govshared.auth import Principal


class BundleCatalogue:
    """The "one thing" bundles and their versions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.bundles = BundleRepository(session)
        self.items = ItemRepository(session)

    async def get(self, code: str) -> Bundle:
        """The bundle in force (404 problem otherwise)."""
        bundle = await self.bundles.get(code)
        if bundle is None:
            raise BundleNotFound(f"一件事 {code} 不在目录中", bundle_code=code)
        return bundle

    async def history(self, code: str) -> list[BundleVersion]:
        """Every version, oldest first."""
        versions = await self.bundles.versions(code)
        if not versions:
            raise BundleNotFound(f"一件事 {code} 不在目录中", bundle_code=code)
        return versions

    async def version(self, code: str, version: int) -> BundleVersion:
        """One version."""
        found = await self.bundles.version(code, version)
        if found is None:
            raise BundleVersionNotFound(f"一件事 {code} 没有第 {version} 版")
        return found

    async def check(self, definition: BundleDefinition) -> None:
        """Every item is in force, every mapping names a field or material of its guide, and every
        required field of an item's form is filled from the combined form (else no application
        for the bundle could ever be submitted)."""
        problems: list[dict[str, str]] = []
        guides: dict[str, dict[str, Any]] = {}
        for entry in definition.items:
            item = await self.items.get(entry.item_code)
            if item is None:
                problems.append(
                    {"name": "definition.items", "reason": f"事项 {entry.item_code} 不在事项目录中"}
                )
            else:
                guides[item.code] = item.guide
        filled: set[tuple[str, str]] = set()
        for field in definition.form_fields:
            for target in field.maps_to:
                guide = guides.get(target.item_code)
                names = {f["name"] for f in (guide or {}).get("form_fields", [])}
                if guide is not None and target.field not in names:
                    problems.append(
                        {
                            "name": f"definition.form_fields.{field.name}",
                            "reason": f"事项 {target.item_code} 的申请表没有字段 {target.field}",
                        }
                    )
                filled.add((target.item_code, target.field))
        for code, guide in guides.items():
            for spec in guide.get("form_fields", []):
                if spec.get("required", True) and (code, spec["name"]) not in filled:
                    problems.append(
                        {
                            "name": "definition.form_fields",
                            "reason": f"事项 {code} 的必填字段 {spec['name']} 未由合并表单填写",
                        }
                    )
        for material in definition.materials:
            for use in material.maps_to:
                guide = guides.get(use.item_code)
                names = {m["name"] for m in (guide or {}).get("materials", [])}
                if guide is not None and use.material not in names:
                    problems.append(
                        {
                            "name": f"definition.materials.{material.name}",
                            "reason": f"事项 {use.item_code} 的办事指南没有材料「{use.material}」",
                        }
                    )
        if problems:
            raise BundleDefinitionInvalid(
                "；".join(p["reason"] for p in problems), invalid_params=problems
            )

    def _values(self, body: BundleDraft) -> dict[str, Any]:
        return {
            "name": body.name,
            "jurisdiction": body.jurisdiction,
            "definition": body.definition.model_dump(mode="json"),
            "change_note": body.change_note,
        }

    async def create(self, *, body: BundleCreate, actor: Principal) -> BundleVersion:
        """A new bundle: version 1 as a draft, not in force until published."""
        if await self.bundles.latest_version_number(body.code):
            raise BundleExists(f"一件事编码 {body.code} 已存在", bundle_code=body.code)
        await self.check(body.definition)
        await self.bundles.add_version(
            {
                "code": body.code,
                "version": 1,
                "status": ItemVersionStatus.DRAFT.value,
                **self._values(body),
                "created_at": datetime.now(UTC),
                "created_by": actor.subject,
                "published_at": None,
            }
        )
        return await self.version(body.code, 1)

    async def revise(self, *, code: str, body: BundleDraft, actor: Principal) -> BundleVersion:
        """Write the next version as a draft (or rewrite the pending draft)."""
        latest = (await self.history(code))[-1]
        await self.check(body.definition)
        if latest.status == ItemVersionStatus.DRAFT.value:
            await self.bundles.replace_draft(code, latest.version, self._values(body))
            number = latest.version
        else:
            number = latest.version + 1
            await self.bundles.add_version(
                {
                    "code": code,
                    "version": number,
                    "status": ItemVersionStatus.DRAFT.value,
                    **self._values(body),
                    "created_at": datetime.now(UTC),
                    "created_by": actor.subject,
                    "published_at": None,
                }
            )
        self.session.expire_all()
        return await self.version(code, number)

    async def publish(self, *, code: str) -> Bundle:
        """Put the pending draft in force, checked again against the catalogue of today;
        bundle applications keep the version they were submitted under."""
        draft = (await self.history(code))[-1]
        if draft.status != ItemVersionStatus.DRAFT.value:
            raise NoBundleDraft(f"一件事 {code} 没有待发布的草稿")
        await self.check(BundleDefinition.model_validate(draft.definition))
        now = datetime.now(UTC)
        await self.bundles.publish(
            code,
            draft.version,
            {
                "code": code,
                "name": draft.name,
                "jurisdiction": draft.jurisdiction,
                "version": draft.version,
                "definition": draft.definition,
                "updated_at": now,
            },
            at=now,
        )
        self.session.expire_all()
        return await self.get(code)


def demo_bundles() -> list[BundleCreate]:
    """The bundles of ``data/demo_bundles.json``, validated as an admin's input would be."""
    raw = resources.files("approval.bundles").joinpath("data/demo_bundles.json").read_text("utf-8")
    return [BundleCreate.model_validate(b) for b in json.loads(raw)["bundles"]]


async def load_demo_bundles(session: AsyncSession) -> int:
    """Insert the demo bundles that are missing, as published version 1 (idempotent)."""
    now = datetime.now(UTC)
    repository = BundleRepository(session)
    inserted = 0
    for bundle in demo_bundles():
        definition = bundle.definition.model_dump(mode="json")
        common = {"code": bundle.code, "name": bundle.name, "jurisdiction": bundle.jurisdiction}
        inserted += await repository.insert_missing(
            {**common, "version": 1, "definition": definition, "updated_at": now},
            {
                **common,
                "version": 1,
                "status": ItemVersionStatus.PUBLISHED.value,
                "definition": definition,
                "change_note": "首次发布（演示目录）",
                "created_at": now,
                "created_by": "system:demo",
                "published_at": now,
            },
        )
    return inserted
