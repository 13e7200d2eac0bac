"""Rules of the reform catalogue: modes in force, statistics from data, append-only versions."""

from __future__ import annotations

import json
import uuid
from datetime import date
from importlib import resources
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Principal
from govshared.contracts import ReformModeAnswer
from govshared.events import REFORM_MODE_LABELS, ReformMode
from govshared.jurisdictions import JURISDICTION_NAMES
from licensing import clock
from licensing.catalogue.repository import CatalogueRepository
from licensing.catalogue.schemas import (
    JurisdictionStatistics,
    ModeCount,
    ReformItemCreate,
    ReformItemDetail,
    ReformItemOut,
    ReformStatistics,
    ReformVersionCreate,
    ReformVersionOut,
    TimelinePoint,
)
from licensing.errors import (
    CommitmentTextRequired,
    ReformItemExists,
    ReformItemNotFound,
    ReformModeNotInForce,
    ReformVersionConflict,
    RetroactiveVersion,
)
from licensing.models import ReformItem, ReformItemVersion


def version_out(version: ReformItemVersion) -> ReformVersionOut:
    """The REST view of a version."""
    mode = ReformMode(version.mode)
    return ReformVersionOut(
        version=version.version,
        jurisdiction=version.jurisdiction,
        effective_from=version.effective_from,
        mode=mode,
        mode_label=REFORM_MODE_LABELS[mode],
        batch=version.batch,
        reform_measures=version.reform_measures,
        supervision_measures=version.supervision_measures,
        supervising_department=version.supervising_department,
        commitment_text=version.commitment_text,
        created_at=version.created_at,
        created_by=version.created_by,
    )


def summary_text(on: date, jurisdiction: str, counts: dict[ReformMode, int]) -> str:
    """The sentence a portal shows, e.g. 7项事项纳入“一网通办”：直接取消审批1项，优化审批服务6项."""
    total = sum(counts.values())
    place = JURISDICTION_NAMES.get(jurisdiction, jurisdiction)
    parts = [f"{REFORM_MODE_LABELS[m]}{counts[m]}项" for m in ReformMode if counts.get(m)]
    return f"截至{on.isoformat()}，{place}{total}项事项纳入“一网通办”：" + "，".join(parts)


def _breakdown(counts: dict[ReformMode, int]) -> list[ModeCount]:
    return [
        ModeCount(mode=m, label=REFORM_MODE_LABELS[m], count=counts.get(m, 0)) for m in ReformMode
    ]


class CatalogueService:
    """The reform catalogue's use cases."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = CatalogueRepository(session)
        self.session = session

    async def mode_answer(self, *, item_code: str, jurisdiction: str, on: date) -> ReformModeAnswer:
        """How the item is handled in the jurisdiction on the date (the contract approval reads)."""
        item = await self.repository.get_item(item_code)
        if item is None:
            raise ReformItemNotFound(f"事项 {item_code} 不在证照分离改革事项目录中")
        version = await self.repository.mode_in_force(
            item_code=item_code, jurisdiction=jurisdiction, on=on
        )
        if version is None:
            raise ReformModeNotInForce(
                f"事项 {item_code} 在 {on.isoformat()} 于区划 {jurisdiction} 尚无生效的改革方式"
            )
        mode = ReformMode(version.mode)
        return ReformModeAnswer(
            item_code=item.code,
            item_name=item.name,
            jurisdiction=version.jurisdiction,
            mode=mode,
            mode_label=REFORM_MODE_LABELS[mode],
            effective_from=version.effective_from,
            version=version.version,
            commitment_text=version.commitment_text,
        )

    async def list_in_force(
        self,
        *,
        jurisdiction: str,
        on: date,
        mode: ReformMode | None,
        keyword: str | None,
        after_code: str | None,
        limit: int,
    ) -> list[ReformItemOut]:
        """Catalogue rows with the version in force."""
        rows = await self.repository.list_in_force(
            jurisdiction=jurisdiction,
            on=on,
            mode=mode.value if mode else None,
            keyword=keyword,
            after_code=after_code,
            limit=limit,
        )
        return [
            ReformItemOut(
                code=item.code,
                name=item.name,
                item_type=item.item_type,
                department=item.department,
                in_force=version_out(version),
            )
            for item, version in rows
        ]

    async def detail(self, item_code: str) -> ReformItemDetail:
        """An item with all its versions."""
        item = await self.repository.get_item(item_code)
        if item is None:
            raise ReformItemNotFound(f"事项 {item_code} 不在证照分离改革事项目录中")
        versions = await self.repository.versions(item_code)
        return ReformItemDetail(
            code=item.code,
            name=item.name,
            item_type=item.item_type,
            department=item.department,
            versions=[version_out(v) for v in versions],
        )

    async def _counts(self, *, jurisdiction: str, on: date) -> tuple[dict[ReformMode, int], int]:
        raw = await self.repository.count_by_mode(jurisdiction=jurisdiction, on=on)
        counts = {ReformMode(mode): count for mode, (count, _) in raw.items()}
        own = sum(own for _, own in raw.values())
        return counts, own

    async def statistics(self, *, jurisdiction: str, on: date) -> ReformStatistics:
        """Items per mode, per jurisdiction and over time, computed from the versions."""
        counts, _ = await self._counts(jurisdiction=jurisdiction, on=on)
        per_jurisdiction = []
        for code in await self.repository.jurisdictions():
            their_counts, own = await self._counts(jurisdiction=code, on=on)
            per_jurisdiction.append(
                JurisdictionStatistics(
                    jurisdiction=code,
                    jurisdiction_name=JURISDICTION_NAMES.get(code),
                    total=sum(their_counts.values()),
                    by_mode=_breakdown(their_counts),
                    own_versions=own,
                )
            )
        timeline = []
        for when in await self.repository.effective_dates(jurisdiction=jurisdiction, on=on):
            then, _ = await self._counts(jurisdiction=jurisdiction, on=when)
            timeline.append(
                TimelinePoint(on=when, total=sum(then.values()), by_mode=_breakdown(then))
            )
        return ReformStatistics(
            on=on,
            jurisdiction=jurisdiction,
            jurisdiction_name=JURISDICTION_NAMES.get(jurisdiction),
            total=sum(counts.values()),
            by_mode=_breakdown(counts),
            summary=summary_text(on, jurisdiction, counts),
            by_jurisdiction=per_jurisdiction,
            timeline=timeline,
        )

    async def add_version(
        self, *, item_code: str, body: ReformVersionCreate, actor: Principal
    ) -> ReformVersionOut:
        """Append a version; past dates are refused so that answers already given stay true."""
        if await self.repository.get_item(item_code) is None:
            raise ReformItemNotFound(f"事项 {item_code} 不在证照分离改革事项目录中")
        version = await self._new_version(item_code=item_code, body=body, actor=actor)
        return version_out(version)

    async def add_item(self, *, body: ReformItemCreate, actor: Principal) -> ReformItemDetail:
        """Add an item with its first version."""
        if await self.repository.get_item(body.code) is not None:
            raise ReformItemExists(f"事项 {body.code} 已在改革事项目录中")
        self._check_version(body.first_version)
        self.repository.add(
            ReformItem(
                code=body.code,
                name=body.name,
                item_type=body.item_type,
                department=body.department,
                created_at=clock.now(),
            )
        )
        version = await self._new_version(item_code=body.code, body=body.first_version, actor=actor)
        return ReformItemDetail(
            code=body.code,
            name=body.name,
            item_type=body.item_type,
            department=body.department,
            versions=[version_out(version)],
        )

    def _check_version(self, body: ReformVersionCreate) -> None:
        if body.effective_from < clock.today():
            raise RetroactiveVersion(
                f"生效日期 {body.effective_from.isoformat()} 早于今天；如需调整请新增自今日起生效的版本"
            )
        if body.mode is ReformMode.COMMITMENT and not (body.commitment_text or "").strip():
            raise CommitmentTextRequired()

    async def _new_version(
        self, *, item_code: str, body: ReformVersionCreate, actor: Principal
    ) -> ReformItemVersion:
        self._check_version(body)
        if await self.repository.version_exists(
            item_code=item_code, jurisdiction=body.jurisdiction, effective_from=body.effective_from
        ):
            raise ReformVersionConflict(
                f"事项 {item_code} 在区划 {body.jurisdiction} 于 {body.effective_from.isoformat()} 已有版本"
            )
        version = ReformItemVersion(
            id=uuid.uuid4(),
            item_code=item_code,
            version=await self.repository.next_version(item_code),
            jurisdiction=body.jurisdiction,
            effective_from=body.effective_from,
            mode=body.mode.value,
            batch=body.batch,
            reform_measures=body.reform_measures,
            supervision_measures=body.supervision_measures,
            supervising_department=body.supervising_department,
            commitment_text=body.commitment_text,
            created_at=clock.now(),
            created_by=actor.subject,
        )
        try:
            # A concurrent admin may take the same number: report a conflict, never a 500.
            async with self.session.begin_nested():
                self.repository.add(version)
                await self.session.flush()
        except IntegrityError as exc:
            raise ReformVersionConflict("该事项的版本号已被并发请求占用，请重试") from exc
        return version


def shipped_catalogue() -> dict[str, Any]:
    """The reform catalogue and licence types shipped in ``data/reform_catalogue.json``."""
    raw = resources.files("licensing").joinpath("data/reform_catalogue.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


async def load_demo_catalogue(session: AsyncSession) -> int:
    """Insert the shipped rows that are missing (idempotent); the number of versions added."""
    data = shipped_catalogue()
    now = clock.now()
    items = [{**item, "created_at": now} for item in data["items"]]
    versions = [
        {
            **v,
            "id": uuid.uuid5(uuid.NAMESPACE_URL, f"reform:{v['item_code']}:{v['version']}"),
            "effective_from": date.fromisoformat(v["effective_from"]),
            "created_at": now,
            "created_by": "system:demo-catalogue",
        }
        for v in data["versions"]
    ]
    return await CatalogueRepository(session).insert_missing(
        items=items, versions=versions, licence_types=data["licence_types"]
    )
