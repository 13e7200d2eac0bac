"""Request-scoped dependencies: the session, the service object, existence and permission checks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.db import get_session
from notify.models import InboxMessage, WebhookSubscription
from notify.service import NotificationService

Session = Annotated[AsyncSession, Depends(get_session)]


async def get_notification_service(request: Request, session: Session) -> NotificationService:
    """The notification service bound to this request's session."""
    state = request.app.state
    return NotificationService(
        session,
        settings=state.settings,
        proof=state.proof,
        on_queued=state.on_queued,
        on_inbox=state.inbox_signal.notify,
    )


Notifications = Annotated[NotificationService, Depends(get_notification_service)]

# Who reads an inbox: an enterprise its own, staff their jurisdiction and role's.
InboxReader = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))]
Enterprise = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))]
Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


async def message_by_id(
    message_id: uuid.UUID, service: Notifications, principal: InboxReader
) -> InboxMessage:
    """The message in the path, if it is the caller's (404 otherwise, never its content)."""
    return await service.get_message(principal=principal, message_id=message_id)


MessageById = Annotated[InboxMessage, Depends(message_by_id)]


async def webhook_by_id(
    webhook_id: uuid.UUID, service: Notifications, principal: Enterprise
) -> WebhookSubscription:
    """The subscription in the path, if the calling enterprise owns it (404 otherwise)."""
    assert principal.uscc is not None
    return await service.get_webhook(owner=principal.uscc, webhook_id=webhook_id)


WebhookById = Annotated[WebhookSubscription, Depends(webhook_by_id)]
