"""Catalogue API: public reads, admin writes (``/api/v1/items``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from approval.catalogue.commitment import with_license_text, without_stored_text
from approval.catalogue.schemas import (
    CatalogueStatistics,
    ItemCreate,
    ItemDraft,
    ItemOut,
    ItemVersionOut,
    ItemVersionSummary,
)
from approval.catalogue.service import CatalogueService
from approval.context import Context
from approval.dependencies import Session
from approval.errors import ItemExists, ItemNotFound, ItemVersionNotFound, NoDraftToPublish
from approval.models import ItemVersionStatus
from govshared.auth import Principal, Role, optional_principal, require_roles
from govshared.db import AutoCommitRoute, end_read
from govshared.events import ReformMode
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)

router = APIRouter(prefix="/api/v1/items", tags=["catalogue"], route_class=AutoCommitRoute)
ADMIN_ERRORS = (Unauthenticated, Forbidden, ValidationFailed)


async def get_catalogue(session: Session) -> CatalogueService:
    """The catalogue service of this request."""
    return CatalogueService(session)


Catalogue = Annotated[CatalogueService, Depends(get_catalogue)]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


# A public route's caller, if it sent a token: admins see drafts and who wrote each version.
Viewer = Annotated[Principal | None, Depends(optional_principal)]


def is_admin(viewer: Principal | None) -> bool:
    """The caller is an admin (who edits the catalogue)."""
    return viewer is not None and viewer.role is Role.ADMIN


def is_draft(status: str) -> bool:
    """A version not published yet: not public (政务公开 publishes what is in force and was)."""
    return status == ItemVersionStatus.DRAFT.value


Shown = TypeVar("Shown", bound=BaseModel)


def redacted(shown: Shown, viewer: Principal | None) -> Shown:
    """A version as the caller sees it: who wrote it is for admins only."""
    return shown if is_admin(viewer) else shown.model_copy(update={"created_by": None})


def shown_to(viewer: Principal | None, versions: Iterable[Any], out: type[Shown]) -> list[Shown]:
    """The versions the caller may see, as ``out``: drafts, and who wrote each, to admins only."""
    return [
        redacted(out.model_validate(v), viewer)
        for v in versions
        if is_admin(viewer) or not is_draft(v.status)
    ]


@router.get(
    "",
    summary="事项目录 (public)",
    response_model=Page[ItemOut],
    responses=problem_responses(InvalidCursor, ValidationFailed),
)
async def list_items(
    catalogue: Catalogue,
    item_type: Annotated[str | None, Query(max_length=32, description="e.g. 行政许可")] = None,
    reform_mode: ReformMode | None = None,
    authority: Annotated[str | None, Query(max_length=100)] = None,
    is_instant: Annotated[bool | None, Query(description="即办件")] = None,
    jurisdiction: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="关键词（事项名称、实施机关、编码）")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[ItemOut]:
    """Items in force, filtered, by code."""
    after = decode_keyset(cursor, str)[0] if cursor else None
    rows = await catalogue.items.search(
        item_type=item_type,
        reform_mode=reform_mode.value if reform_mode else None,
        authority=authority,
        is_instant=is_instant,
        keyword=q,
        jurisdiction=jurisdiction,
        after_code=after,
        limit=limit + 1,
    )
    return page_of(
        [without_stored_text(ItemOut.model_validate(r)) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.code],
    )


@router.get("/statistics", summary="事项目录统计 (public)", response_model=CatalogueStatistics)
async def catalogue_statistics(catalogue: Catalogue) -> CatalogueStatistics:
    """Items per reform mode, share of 即办件, share with a committed limit below the statutory one."""
    return await catalogue.statistics()


@router.get(
    "/{code}",
    summary="事项及现行办事指南 (public)",
    response_model=ItemOut,
    responses=problem_responses(ItemNotFound, DependencyUnavailable),
)
async def get_item(code: str, catalogue: Catalogue, session: Session, context: Context) -> ItemOut:
    """One item with the service guide in force.

    The 告知承诺 text (``guide.commitment_text``) and its ``commitment_text_sha256`` are license's,
    for the item's jurisdiction today: the same text and digest as license's
    ``GET /api/v1/reform-items/{code}/mode``, and the digest an applicant signs. The list and the
    version history carry no commitment text.
    """
    item = ItemOut.model_validate(await catalogue.get(code))
    # The read is done: end its transaction before asking license (never wait on another
    # service with a connection and a transaction held open).
    await end_read(session)
    return await with_license_text(item, context.license_client, on=context.today())


@router.get(
    "/{code}/versions",
    summary="办事指南变更历史 (public)",
    response_model=list[ItemVersionSummary],
    responses=problem_responses(ItemNotFound),
)
async def item_history(code: str, catalogue: Catalogue, viewer: Viewer) -> list[ItemVersionSummary]:
    """Every version of the guide, oldest first. A draft is not public until it is published (an
    admin with a token sees drafts and who wrote each version)."""
    shown = shown_to(viewer, await catalogue.history(code), ItemVersionSummary)
    if not shown:
        raise ItemNotFound(f"事项编码 {code} 不在事项目录中", item_code=code)
    return shown


@router.get(
    "/{code}/versions/{version}",
    summary="指定版本的办事指南 (public)",
    response_model=ItemVersionOut,
    responses=problem_responses(ItemVersionNotFound),
)
async def item_version(
    code: str,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    catalogue: Catalogue,
    viewer: Viewer,
) -> ItemVersionOut:
    """A given version, e.g. the one an application was submitted under (a draft: admins only)."""
    found = await catalogue.version(code, version)
    if is_draft(found.status) and not is_admin(viewer):
        raise ItemVersionNotFound(f"事项 {code} 没有第 {version} 版办事指南")
    return without_stored_text(ItemVersionOut.model_validate(found))


@router.post(
    "",
    summary="新建事项（草稿）(admin)",
    status_code=201,
    response_model=ItemVersionOut,
    responses=problem_responses(*ADMIN_ERRORS, ItemExists),
)
async def create_item(body: ItemCreate, catalogue: Catalogue, admin: Admin) -> ItemVersionOut:
    """Create an item as a draft version 1."""
    return without_stored_text(
        ItemVersionOut.model_validate(await catalogue.create(body=body, actor=admin))
    )


@router.put(
    "/{code}/draft",
    summary="修订办事指南（草稿）(admin)",
    response_model=ItemVersionOut,
    responses=problem_responses(*ADMIN_ERRORS, ItemNotFound),
)
async def revise_item(
    code: str, body: ItemDraft, catalogue: Catalogue, admin: Admin
) -> ItemVersionOut:
    """Write the next version as a draft; the version in force is untouched until publication."""
    return without_stored_text(
        ItemVersionOut.model_validate(await catalogue.revise(code=code, body=body, actor=admin))
    )


@router.post(
    "/{code}/publish",
    summary="发布办事指南 (admin)",
    response_model=ItemOut,
    responses=problem_responses(*ADMIN_ERRORS, ItemNotFound, NoDraftToPublish),
)
async def publish_item(code: str, catalogue: Catalogue, admin: Admin) -> ItemOut:
    """Put the draft in force."""
    return without_stored_text(ItemOut.model_validate(await catalogue.publish(code=code)))
