"""Request-scoped dependencies: the session, the service objects, existence and permission checks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from approval.actions import ActionService
from approval.context import context_of
from approval.models import Application
from approval.reading import ApplicationReader
from approval.submission import SubmissionService
from govshared.auth import Principal, get_principal
from govshared.db import get_session

Session = Annotated[AsyncSession, Depends(get_session)]

# The services are built from the request's session and the context directly rather than through
# sub-dependencies: the hot routes' dependency graph stays small (the submission and the lifecycle
# actions call ``get_submissions`` and ``get_actions`` in the endpoint, no ``Depends`` at all).
# Tests pin ``context.today``.


async def get_reader(request: Request) -> ApplicationReader:
    """Reading of applications, bound to this request's session."""
    context = context_of(request.app)
    return ApplicationReader(
        await get_session(request),
        today=context.today,
        warn_days=context.settings.clock_warn_days,
    )


async def get_submissions(request: Request) -> SubmissionService:
    """Submission of applications, bound to this request's session."""
    context = context_of(request.app)
    return SubmissionService(
        await get_session(request),
        outbox=context.outbox,
        license_client=context.license_client,
        today=context.today,
        warn_days=context.settings.clock_warn_days,
        sealing=context.sealing,
    )


async def get_actions(request: Request) -> ActionService:
    """The lifecycle's actions, bound to this request's session."""
    context = context_of(request.app)
    return ActionService(
        await get_session(request),
        outbox=context.outbox,
        today=context.today,
        warn_days=context.settings.clock_warn_days,
        sealing=context.sealing,
    )


Reader = Annotated[ApplicationReader, Depends(get_reader)]
Submissions = Annotated[SubmissionService, Depends(get_submissions)]
Actions = Annotated[ActionService, Depends(get_actions)]


async def application_by_id(
    application_id: uuid.UUID,
    reader: Reader,
    principal: Annotated[Principal, Depends(get_principal)],
) -> Application:
    """The application in the path, if the caller may see it (404 otherwise), as the law has it
    today (accepted once its acceptance period has run out, Art. 32)."""
    return await reader.effective(
        await reader.get_visible(principal=principal, application_id=application_id)
    )


ApplicationById = Annotated[Application, Depends(application_by_id)]
