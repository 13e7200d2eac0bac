"""Materials API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from approval.context import Context
from approval.dependencies import ApplicationById, Session
from approval.errors import (
    ApplicationNotFound,
    IllegalTransition,
    MaterialNotInGuide,
    NoValidLicence,
)
from approval.materials.schemas import MaterialChecklist, MaterialFromLicence, MaterialOut
from approval.materials.service import MaterialService
from govshared.auth import STAFF_ROLES, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from govshared.uploads import ACCEPTED_TYPES, UploadContentRejected, UploadLimits, file_response

router = APIRouter(
    prefix="/api/v1/applications/{application_id}/materials",
    tags=["materials"],
    route_class=AutoCommitRoute,
)
AUTH_ERRORS = (Unauthenticated, Forbidden, ApplicationNotFound, ValidationFailed)
Applicant = Depends(require_roles(Role.ENTERPRISE))


async def get_materials(context: Context, session: Session) -> MaterialService:
    """The materials service of this request."""
    settings = context.settings
    return MaterialService(
        session,
        storage=context.storage,
        license_client=context.license_client,
        max_bytes=settings.max_upload_bytes,
        limits=UploadLimits(max_image_pixels=settings.max_image_pixels),
    )


Materials = Annotated[MaterialService, Depends(get_materials)]


@router.post(
    "",
    summary="上传申请材料 (enterprise)",
    status_code=201,
    response_model=MaterialOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        IllegalTransition,
        MaterialNotInGuide,
        PayloadTooLarge,
        UnsupportedMediaType,
        UploadContentRejected,
        DependencyUnavailable,
    ),
    dependencies=[Applicant],
)
async def upload_material(
    application: ApplicationById,
    materials: Materials,
    name: Annotated[str, Form(min_length=1, max_length=200, description="办事指南中的材料名称")],
    file: Annotated[UploadFile, File(description="PDF、OFD、PNG 或 JPEG")],
) -> MaterialOut:
    """Upload a material; checked by content and parsed as its type, its SHA-256 kept."""
    return await materials.upload(application=application, name=name, file=file)


@router.post(
    "/from-licence",
    summary="以电子证照免交材料 (enterprise)",
    status_code=201,
    response_model=MaterialOut,
    responses=problem_responses(
        *AUTH_ERRORS, IllegalTransition, MaterialNotInGuide, NoValidLicence, DependencyUnavailable
    ),
    dependencies=[Applicant],
)
async def material_from_licence(
    application: ApplicationById, body: MaterialFromLicence, materials: Materials
) -> MaterialOut:
    """减证便民: a material we already hold as a valid e-licence needs no upload."""
    return await materials.from_licence(application=application, name=body.name)


@router.get(
    "",
    summary="材料清单",
    response_model=MaterialChecklist,
    responses=problem_responses(*AUTH_ERRORS),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))],
)
async def list_materials(application: ApplicationById, materials: Materials) -> MaterialChecklist:
    """The application's materials and the required ones still missing."""
    return await materials.checklist(application=application)


@router.get(
    "/{material_id}/content",
    summary="下载材料",
    response_class=Response,
    responses={
        200: {
            "content": {t: {} for t in ("application/octet-stream", *ACCEPTED_TYPES)},
            "description": "The file, as an attachment (never rendered inline)",
        },
        **problem_responses(*AUTH_ERRORS, MaterialNotInGuide),
    },
    dependencies=[Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))],
)
async def material_content(
    application: ApplicationById, material_id: uuid.UUID, materials: Materials
) -> Response:
    """The uploaded file, for its applicant and the staff of the jurisdiction."""
    material, data = await materials.content(application=application, material_id=material_id)
    return file_response(
        data,
        filename=material.filename or "",
        fallback=f"material-{material.id}",
        content_type=material.content_type,
        headers={"X-Content-SHA256": material.sha256 or ""},
    )
