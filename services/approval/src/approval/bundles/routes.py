"""一件事一次办 API: the public catalogue of bundles, admin publishing, bundle applications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from approval.bundles.applications import BundleApplications
from approval.bundles.catalogue import BundleCatalogue
from approval.bundles.errors import (
    BundleApplicationNotFound,
    BundleDefinitionInvalid,
    BundleExists,
    BundleItemNotInBundle,
    BundleItemNotSubmitted,
    BundleNotFound,
    BundleVersionNotFound,
    NoBundleDraft,
)
from approval.bundles.materials import upload_shared
from approval.bundles.schemas import (
    BundleApplicationCreate,
    BundleApplicationOut,
    BundleCreate,
    BundleDraft,
    BundleMaterialOut,
    BundleOut,
    BundleVersionOut,
)
from approval.catalogue.routes import Viewer, is_admin, is_draft, redacted, shown_to
from approval.dependencies import Reader, Session, Submissions
from approval.errors import FormInvalid, IllegalTransition, MaterialNotInGuide
from approval.materials.routes import Materials
from govshared.auth import STAFF_ROLES, Principal, Role, get_principal, require_roles
from govshared.db import AutoCommitRoute
from govshared.idempotency import idempotency_key, idempotency_openapi
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    IdempotencyKeyReused,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from govshared.uploads import UploadContentRejected

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)
ADMIN_ERRORS = (*AUTH_ERRORS, ValidationFailed, BundleDefinitionInvalid)
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Enterprise = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))]


async def get_catalogue(session: Session) -> BundleCatalogue:
    """The bundle catalogue of this request."""
    return BundleCatalogue(session)


async def get_bundle_applications(
    session: Session, submissions: Submissions, reader: Reader
) -> BundleApplications:
    """Bundle applications over this request's submission and reading of applications."""
    return BundleApplications(session, submissions=submissions, reader=reader)


Catalogue = Annotated[BundleCatalogue, Depends(get_catalogue)]
Bundles = Annotated[BundleApplications, Depends(get_bundle_applications)]


@router.get(
    "/bundles",
    tags=["bundles"],
    summary="一件事目录 (public)",
    response_model=Page[BundleOut],
    responses=problem_responses(InvalidCursor, ValidationFailed),
)
async def list_bundles(
    catalogue: Catalogue,
    jurisdiction: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[BundleOut]:
    """Bundles in force, by code."""
    after = decode_keyset(cursor, str)[0] if cursor else None
    rows = await catalogue.bundles.search(
        jurisdiction=jurisdiction, after_code=after, limit=limit + 1
    )
    return page_of(
        [BundleOut.model_validate(r) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.code],
    )


@router.get(
    "/bundles/{code}",
    tags=["bundles"],
    summary="一件事及现行版本 (public)",
    response_model=BundleOut,
    responses=problem_responses(BundleNotFound),
)
async def get_bundle(code: str, catalogue: Catalogue) -> BundleOut:
    """A bundle in force: its items, its combined form and the materials shared between items."""
    return BundleOut.model_validate(await catalogue.get(code))


@router.get(
    "/bundles/{code}/versions",
    tags=["bundles"],
    summary="一件事变更历史 (public)",
    response_model=list[BundleVersionOut],
    responses=problem_responses(BundleNotFound),
)
async def bundle_history(code: str, catalogue: Catalogue, viewer: Viewer) -> list[BundleVersionOut]:
    """Every version, oldest first (a bundle application keeps the version it was submitted under).
    A draft is not public until it is published (admins see drafts and who wrote each)."""
    shown = shown_to(viewer, await catalogue.history(code), BundleVersionOut)
    if not shown:
        raise BundleNotFound(f"一件事 {code} 不存在")
    return shown


@router.get(
    "/bundles/{code}/versions/{version}",
    tags=["bundles"],
    summary="一件事的指定版本 (public)",
    response_model=BundleVersionOut,
    responses=problem_responses(BundleVersionNotFound),
)
async def bundle_version(
    code: str,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    catalogue: Catalogue,
    viewer: Viewer,
) -> BundleVersionOut:
    """One version (a draft: admins only)."""
    found = await catalogue.version(code, version)
    if is_draft(found.status) and not is_admin(viewer):
        raise BundleVersionNotFound(f"一件事 {code} 没有第 {version} 版")
    return redacted(BundleVersionOut.model_validate(found), viewer)


@router.post(
    "/bundles",
    tags=["bundles"],
    summary="新建一件事（草稿）(admin)",
    status_code=201,
    response_model=BundleVersionOut,
    responses=problem_responses(*ADMIN_ERRORS, BundleExists),
)
async def create_bundle(body: BundleCreate, catalogue: Catalogue, admin: Admin) -> BundleVersionOut:
    """Create a bundle as a draft version 1, checked against the items in force."""
    return BundleVersionOut.model_validate(await catalogue.create(body=body, actor=admin))


@router.put(
    "/bundles/{code}/draft",
    tags=["bundles"],
    summary="修订一件事（草稿）(admin)",
    response_model=BundleVersionOut,
    responses=problem_responses(*ADMIN_ERRORS, BundleNotFound),
)
async def revise_bundle(
    code: str, body: BundleDraft, catalogue: Catalogue, admin: Admin
) -> BundleVersionOut:
    """Write the next version as a draft; the version in force is untouched until publication."""
    return BundleVersionOut.model_validate(
        await catalogue.revise(code=code, body=body, actor=admin)
    )


@router.post(
    "/bundles/{code}/publish",
    tags=["bundles"],
    summary="发布一件事 (admin)",
    response_model=BundleOut,
    responses=problem_responses(*ADMIN_ERRORS, BundleNotFound, NoBundleDraft),
)
async def publish_bundle(code: str, catalogue: Catalogue, admin: Admin) -> BundleOut:
    """Put the draft in force."""
    return BundleOut.model_validate(await catalogue.publish(code=code))


@router.post(
    "/bundle-applications",
    tags=["bundles"],
    summary="一件事一次申请 (enterprise)",
    status_code=201,
    response_model=BundleApplicationOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        BundleNotFound,
        FormInvalid,
        BundleItemNotSubmitted,
        BundleItemNotInBundle,
        IdempotencyKeyReused,
        ValidationFailed,
        DependencyUnavailable,
    ),
    openapi_extra=idempotency_openapi(
        "A retry with the same key returns the first result, never a second set of applications"
    ),
)
async def submit_bundle_application(
    request: Request, body: BundleApplicationCreate, bundles: Bundles, principal: Enterprise
) -> JSONResponse:
    """Apply once for every item of a bundle: one ordinary application per item, each on its own
    statutory clock; all or none."""
    status, payload, replayed = await bundles.submit(
        principal=principal, body=body, idempotency_key=idempotency_key(request)
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(payload, status_code=status, headers=headers)


@router.get(
    "/bundle-applications",
    tags=["bundles"],
    summary="我的一件事申请 (enterprise)",
    response_model=Page[BundleApplicationOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def list_bundle_applications(
    bundles: Bundles,
    principal: Enterprise,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[BundleApplicationOut]:
    """The enterprise's bundle applications with their combined progress, newest first."""
    after = decode_keyset(cursor, datetime, uuid.UUID) if cursor else None
    found = await bundles.list_own(principal=principal, limit=limit + 1, after=after)
    return page_of(
        found[:limit],
        more=len(found) > limit,
        cursor_of=lambda last: [last.submitted_at, last.id],
    )


@router.get(
    "/staff/bundle-applications",
    tags=["staff", "bundles"],
    summary="工作台：本辖区有事项的一件事申请及合并进度 (staff)",
    response_model=Page[BundleApplicationOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def staff_bundle_applications(
    bundles: Bundles,
    principal: Annotated[Principal, Depends(require_roles(*STAFF_ROLES))],
    bundle_code: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[BundleApplicationOut]:
    """Bundle applications with at least one item in the caller's jurisdiction (as the staff
    queue; admins see all), newest first, each with every item and the combined progress."""
    after = decode_keyset(cursor, datetime, uuid.UUID) if cursor else None
    found = await bundles.list_for_staff(
        principal=principal, bundle_code=bundle_code, limit=limit + 1, after=after
    )
    return page_of(
        found[:limit],
        more=len(found) > limit,
        cursor_of=lambda last: [last.submitted_at, last.id],
    )


@router.get(
    "/bundle-applications/{bundle_application_id}",
    tags=["bundles"],
    summary="一件事的合并进度与结果 (applicant, staff of its items' jurisdictions)",
    response_model=BundleApplicationOut,
    responses=problem_responses(*AUTH_ERRORS, BundleApplicationNotFound),
)
async def get_bundle_application(
    bundle_application_id: uuid.UUID,
    bundles: Bundles,
    principal: Annotated[Principal, Depends(get_principal)],
) -> BundleApplicationOut:
    """One combined progress while any item is in progress, one combined result once all are
    decided (a refused item with its reason)."""
    return await bundles.get_visible(
        principal=principal, bundle_application_id=bundle_application_id
    )


@router.post(
    "/bundle-applications/{bundle_application_id}/materials",
    tags=["bundles"],
    summary="一件事共享材料：上传一次，各事项共用 (enterprise)",
    status_code=201,
    response_model=BundleMaterialOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        BundleApplicationNotFound,
        IllegalTransition,
        MaterialNotInGuide,
        PayloadTooLarge,
        UnsupportedMediaType,
        UploadContentRejected,
    ),
)
async def upload_bundle_material(
    bundle_application_id: uuid.UUID,
    session: Session,
    materials: Materials,
    reader: Reader,
    principal: Enterprise,
    name: Annotated[str, Form(min_length=1, max_length=200, description="一件事共享材料的名称")],
    file: Annotated[UploadFile, File(description="PDF、OFD、PNG 或 JPEG")],
) -> BundleMaterialOut:
    """Upload a shared material once: one stored file, recorded as a material of every item of
    the bundle that needs it."""
    return await upload_shared(
        session,
        materials=materials,
        reader=reader,
        principal=principal,
        bundle_application_id=bundle_application_id,
        name=name,
        file=file,
    )
