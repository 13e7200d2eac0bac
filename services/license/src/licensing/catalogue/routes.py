"""The reform catalogue's REST API. Routes stay thin: parse, authorise, call the service."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from govshared.auth import Principal, Role, get_principal, require_roles
from govshared.contracts import ReformModeAnswer
from govshared.db import AutoCommitRoute
from govshared.events import ReformMode
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import Forbidden, Unauthenticated, ValidationFailed, problem_responses
from licensing import clock
from licensing.catalogue.schemas import (
    JURISDICTION_PATTERN,
    ReformItemCreate,
    ReformItemDetail,
    ReformItemOut,
    ReformStatistics,
    ReformVersionCreate,
    ReformVersionOut,
)
from licensing.dependencies import Catalogue
from licensing.errors import (
    CommitmentTextRequired,
    ReformItemExists,
    ReformItemNotFound,
    ReformModeNotInForce,
    ReformVersionConflict,
    RetroactiveVersion,
)
from licensing.models import CITY_WIDE

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute, tags=["reform catalogue"])
AUTH_ERRORS = (Unauthenticated, Forbidden)

Jurisdiction = Annotated[
    str, Query(pattern=JURISDICTION_PATTERN, description="行政区划, e.g. 310000, 310115, 310118")
]
OnDate = Annotated[date | None, Query(description="Date the answer applies to (default today)")]


@router.get(
    "/reform-items",
    summary="证照分离改革事项 (public)",
    response_model=Page[ReformItemOut],
    responses=problem_responses(InvalidCursor, ValidationFailed),
)
async def list_reform_items(
    catalogue: Catalogue,
    jurisdiction: Jurisdiction = CITY_WIDE,
    on: OnDate = None,
    mode: ReformMode | None = None,
    keyword: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> Page[ReformItemOut]:
    """Items with the mode in force for the jurisdiction on the date, by item code."""
    after = decode_keyset(cursor, str)[0] if cursor else None
    rows = await catalogue.list_in_force(
        jurisdiction=jurisdiction,
        on=on or clock.today(),
        mode=mode,
        keyword=keyword,
        after_code=after,
        limit=limit + 1,
    )
    return page_of(
        rows[:limit],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.code],
    )


@router.get(
    "/reform-items/statistics",
    summary="改革事项统计 (public, computed from the catalogue)",
    response_model=ReformStatistics,
    responses=problem_responses(ValidationFailed),
)
async def reform_statistics(
    catalogue: Catalogue, jurisdiction: Jurisdiction = CITY_WIDE, on: OnDate = None
) -> ReformStatistics:
    """Items per mode, per jurisdiction and over time."""
    return await catalogue.statistics(jurisdiction=jurisdiction, on=on or clock.today())


@router.post(
    "/reform-items",
    summary="新增改革事项 (admin)",
    status_code=201,
    response_model=ReformItemDetail,
    responses=problem_responses(
        *AUTH_ERRORS,
        ReformItemExists,
        ReformVersionConflict,
        RetroactiveVersion,
        CommitmentTextRequired,
        ValidationFailed,
    ),
)
async def add_reform_item(
    body: ReformItemCreate,
    catalogue: Catalogue,
    principal: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
) -> ReformItemDetail:
    """Add an item to the reform catalogue with its first version."""
    return await catalogue.add_item(body=body, actor=principal)


@router.get(
    "/reform-items/{item_code}",
    summary="改革事项及其全部版本 (public)",
    response_model=ReformItemDetail,
    responses=problem_responses(ReformItemNotFound),
)
async def get_reform_item(item_code: str, catalogue: Catalogue) -> ReformItemDetail:
    """An item with its whole version history."""
    return await catalogue.detail(item_code)


@router.post(
    "/reform-items/{item_code}/versions",
    summary="新增改革方式版本 (admin; history is never edited)",
    status_code=201,
    response_model=ReformVersionOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        ReformItemNotFound,
        ReformVersionConflict,
        RetroactiveVersion,
        CommitmentTextRequired,
        ValidationFailed,
    ),
)
async def add_reform_version(
    item_code: str,
    body: ReformVersionCreate,
    catalogue: Catalogue,
    principal: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
) -> ReformVersionOut:
    """Append a version of the item's mode for a jurisdiction from a date."""
    return await catalogue.add_version(item_code=item_code, body=body, actor=principal)


@router.get(
    "/reform-items/{item_code}/mode",
    summary="事项在某区划某日适用的改革方式 (any authenticated caller)",
    response_model=ReformModeAnswer,
    responses=problem_responses(
        Unauthenticated, ReformItemNotFound, ReformModeNotInForce, ValidationFailed
    ),
    dependencies=[Depends(get_principal)],
)
async def reform_mode(
    item_code: str,
    catalogue: Catalogue,
    jurisdiction: Jurisdiction = CITY_WIDE,
    on: OnDate = None,
) -> ReformModeAnswer:
    """The mode in force: the jurisdiction's own latest version, else the city-wide one."""
    return await catalogue.mode_answer(
        item_code=item_code, jurisdiction=jurisdiction, on=on or clock.today()
    )
