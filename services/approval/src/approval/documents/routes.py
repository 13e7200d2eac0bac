"""Documents API: the parties download their documents; anyone verifies one (no login)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import HTMLResponse, Response

from approval.context import Context
from approval.dependencies import ApplicationById, Session
from approval.documents import DELIVERING_SERVICE, is_delivering_service
from approval.documents.errors import DocumentNotFound, DocumentNotSealed
from approval.documents.page import verify_page
from approval.documents.schemas import DocumentList, DocumentOut, Verification
from approval.documents.service import DocumentService
from approval.errors import ApplicationNotFound
from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.problems import (
    Forbidden,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from govshared.seal import SealUnavailable
from govshared.storage import read_pdf_upload
from govshared.uploads import file_response

router = APIRouter(
    prefix="/api/v1/applications/{application_id}/documents",
    tags=["documents"],
    route_class=AutoCommitRoute,
)
public_router = APIRouter(tags=["verification"], route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden, ApplicationNotFound, ValidationFailed)
Parties = Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))
_downloader = require_roles(Role.ENTERPRISE, Role.SERVICE, *STAFF_ROLES)


async def document_downloader(
    principal: Annotated[Principal, Depends(_downloader)],
) -> Principal:
    """The parties, and notify's service token; another service's token is a 403 problem (a
    document names the applicant and its decision: no other service needs it)."""
    if principal.role is Role.SERVICE and not is_delivering_service(principal.subject):
        raise Forbidden(
            f"服务令牌仅限送达文书的通知服务（{DELIVERING_SERVICE}）下载文书",
            required_service=DELIVERING_SERVICE,
        )
    return principal


NUMBER = Query(min_length=4, max_length=64, description="文书编号")
SHA256 = Query(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the PDF file in hand")
DIGEST = Query(pattern=r"^[0-9a-fA-F]{64}$", description="SM3 content digest (from the QR code)")


async def get_documents(context: Context, session: Session) -> DocumentService:
    """The documents service of this request."""
    return DocumentService(session, sealing=context.sealing, verifier=context.verifier())


Documents = Annotated[DocumentService, Depends(get_documents)]


@router.get(
    "",
    summary="文书列表（申请人及辖区工作人员）",
    response_model=DocumentList,
    responses=problem_responses(*AUTH_ERRORS),
    dependencies=[Parties],
)
async def list_documents(application: ApplicationById, documents: Documents) -> DocumentList:
    """The notices and decisions issued on the application, oldest first."""
    items = await documents.list(application=application)
    return DocumentList(items=[DocumentOut.model_validate(d) for d in items])


@router.get(
    "/{document_id}/pdf",
    summary="下载文书 PDF",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}},
        **problem_responses(*AUTH_ERRORS, DocumentNotFound, DocumentNotSealed, SealUnavailable),
    },
    dependencies=[Depends(document_downloader)],
)
async def document_pdf(
    application: ApplicationById, document_id: uuid.UUID, documents: Documents
) -> Response:
    """The sealed PDF as issued (also to notify's service token, which delivers it by email)."""
    document, data = await documents.pdf(application=application, document_id=document_id)
    return file_response(
        data,
        filename=f"{document.id}.pdf",
        fallback=f"{document.id}.pdf",
        content_type="application/pdf",
        headers={"X-Content-SHA256": document.pdf_sha256 or ""},
    )


async def _read_pdf(context: Context, file: UploadFile) -> bytes:
    return await read_pdf_upload(file, limit=context.settings.max_upload_bytes)


@public_router.post(
    "/api/v1/documents/verify",
    summary="核验文书（上传 PDF，无需登录）",
    response_model=Verification,
    responses=problem_responses(
        PayloadTooLarge, UnsupportedMediaType, ValidationFailed, SealUnavailable
    ),
)
async def verify_upload(
    context: Context,
    documents: Documents,
    file: Annotated[UploadFile, File(description="The PDF to check")],
) -> Verification:
    """Genuine, unaltered, issued by whom, still valid: from the file alone plus our register."""
    return await documents.verify_pdf(await _read_pdf(context, file))


@public_router.get(
    "/api/v1/documents/verify",
    summary="按文书编号核验（无需登录）",
    response_model=Verification,
    responses=problem_responses(ValidationFailed, SealUnavailable),
)
async def verify_by_number(
    documents: Documents,
    number: Annotated[str, NUMBER],
    sha256: Annotated[str | None, SHA256] = None,
    digest: Annotated[str | None, DIGEST] = None,
) -> Verification:
    """Look a number up, re-check its seal, and compare the hash of the copy in hand."""
    return await documents.verify_number(number=number, sha256=sha256, digest=digest)


@public_router.get(
    "/verify",
    summary="文书核验页面",
    response_class=HTMLResponse,
    responses=problem_responses(ValidationFailed, SealUnavailable),
)
async def verify_page_get(
    documents: Documents,
    number: Annotated[str | None, Query(max_length=64)] = None,
    sha256: Annotated[str | None, Query(max_length=64)] = None,
    digest: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The public page; with a number (typed, or from a QR code) it shows the result."""
    result = None
    if number:
        result = await documents.verify_number(
            number=number, sha256=sha256 or None, digest=digest or None
        )
    return HTMLResponse(verify_page(result, number=number or ""))


@public_router.post(
    "/verify",
    summary="文书核验页面（上传 PDF）",
    response_class=HTMLResponse,
    responses=problem_responses(PayloadTooLarge, UnsupportedMediaType, ValidationFailed),
)
async def verify_page_post(
    context: Context,
    documents: Documents,
    file: Annotated[UploadFile, File()],
) -> HTMLResponse:
    """The page after an upload (a wrong file is explained on the page, not as JSON)."""
    try:
        data = await _read_pdf(context, file)
    except (PayloadTooLarge, UnsupportedMediaType) as exc:
        return HTMLResponse(
            verify_page(None, error=exc.detail or exc.title), status_code=exc.status
        )
    return HTMLResponse(verify_page(await documents.verify_pdf(data)))
