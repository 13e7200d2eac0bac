"""Request-scoped dependencies: the session, the service objects, existence and permission checks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from approval.context import context_of
from approval.models import Application
from approval.service import ApplicationService
from govshared.auth import Principal, get_principal
from govshared.db import get_session

Session = Annotated[AsyncSession, Depends(get_session)]


async def get_application_service(request: Request) -> ApplicationService:
    """The application service bound to this request's session (the session and the context
    are taken here rather than as sub-dependencies: the hot routes' dependency graph stays
    small; tests override this dependency, or pin ``context.today``)."""
    context = context_of(request.app)
    return ApplicationService(
        await get_session(request),
        outbox=context.outbox,
        license_client=context.license_client,
        today=context.today,
        warn_days=context.settings.clock_warn_days,
        sealing=context.sealing,
    )


Applications = Annotated[ApplicationService, Depends(get_application_service)]


async def application_by_id(
    application_id: uuid.UUID,
    service: Applications,
    principal: Annotated[Principal, Depends(get_principal)],
) -> Application:
    """The application in the path, if the caller may see it (404 otherwise), as the law has it
    today (accepted once its acceptance period has run out, Art. 32)."""
    return await service.effective(
        await service.get_visible(principal=principal, application_id=application_id)
    )


ApplicationById = Annotated[Application, Depends(application_by_id)]
