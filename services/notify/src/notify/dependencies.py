"""Request-scoped dependencies: the session, the use-case services, existence and permission checks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.db import get_session
from notify.context import NotifyContext, get_context
from notify.deliveries import DeliveryService, PreferenceService
from notify.inbox import InboxService
from notify.intake import IntakeService
from notify.models import InboxMessage, WebhookSubscription
from notify.templates.service import TemplateService
from notify.webhooks import WebhookService

Session = Annotated[AsyncSession, Depends(get_session)]


Context = Annotated[NotifyContext, Depends(get_context)]


async def get_intake(context: Context, session: Session) -> IntakeService:
    """Event and direct-notice intake bound to this request's session."""
    return IntakeService(
        session,
        settings=context.settings,
        proof=context.proof,
        wakeups=context.wakeups,
        links=context.links,
    )


async def get_inbox(session: Session) -> InboxService:
    """The caller's inbox bound to this request's session."""
    return InboxService(session)


async def get_deliveries(context: Context, session: Session) -> DeliveryService:
    """Deliveries as staff see them, bound to this request's session."""
    return DeliveryService(
        session, settings=context.settings, proof=context.proof, wakeups=context.wakeups
    )


async def get_preferences(context: Context, session: Session) -> PreferenceService:
    """Recipients' preferences bound to this request's session."""
    return PreferenceService(session, settings=context.settings)


async def get_webhooks(context: Context, session: Session) -> WebhookService:
    """Webhook subscriptions bound to this request's session."""
    return WebhookService(session, settings=context.settings)


async def get_templates(context: Context, session: Session) -> TemplateService:
    """Template versions bound to this request's session."""
    return TemplateService(session, settings=context.settings)


Intake = Annotated[IntakeService, Depends(get_intake)]
Inbox = Annotated[InboxService, Depends(get_inbox)]
Deliveries = Annotated[DeliveryService, Depends(get_deliveries)]
Preferences = Annotated[PreferenceService, Depends(get_preferences)]
Webhooks = Annotated[WebhookService, Depends(get_webhooks)]
Templates = Annotated[TemplateService, Depends(get_templates)]

# Who reads an inbox: an enterprise its own, staff their jurisdiction and role's.
InboxReader = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))]
Enterprise = Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))]
Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


async def message_by_id(
    message_id: uuid.UUID, inbox: Inbox, principal: InboxReader
) -> InboxMessage:
    """The message in the path, if it is the caller's (404 otherwise, never its content)."""
    return await inbox.get_message(principal=principal, message_id=message_id)


MessageById = Annotated[InboxMessage, Depends(message_by_id)]


async def webhook_by_id(
    webhook_id: uuid.UUID, webhooks: Webhooks, principal: Enterprise
) -> WebhookSubscription:
    """The subscription in the path, if the calling enterprise owns it (404 otherwise)."""
    assert principal.uscc is not None
    return await webhooks.get_webhook(owner=principal.uscc, webhook_id=webhook_id)


WebhookById = Annotated[WebhookSubscription, Depends(webhook_by_id)]
