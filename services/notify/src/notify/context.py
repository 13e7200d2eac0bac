"""What notify's requests and workers share, built once by the lifespan (``main.create_app``).

Dependencies read it through ``get_context``; tests replace a part of it with
``app.dependency_overrides[get_context]`` or reach its workers with ``context_of(app)``, never
through attributes looked up by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.outbox import OutboxRelay
from notify.config import Settings
from notify.deliveries import Wakeups
from notify.delivery import ProofOfService
from notify.documents import DocumentLinks
from notify.inbox import InboxSignal
from notify.worker import DeliveryWorker


@dataclass(frozen=True, slots=True)
class NotifyContext:
    """The service's settings, ports and workers."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    proof: ProofOfService
    links: DocumentLinks
    inbox_signal: InboxSignal
    # Woken after a commit that queued deliveries or wrote inbox messages.
    wakeups: Wakeups
    relay: OutboxRelay
    delivery_worker: DeliveryWorker


def context_of(app: FastAPI) -> NotifyContext:
    """The context the app's lifespan built (it must be running)."""
    context = app.state.context
    assert isinstance(context, NotifyContext), "the app's lifespan has not started"
    return context


def get_context(request: Request) -> NotifyContext:
    """The app's context, as a dependency (overridable in tests)."""
    return context_of(request.app)
