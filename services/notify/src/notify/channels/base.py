"""The channel interface: one outbound message in, one outcome (or a ChannelError) out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from notify.models import Channel, DeliveryStatus


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with an email (a sealed PDF, checked against its published hash)."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """Everything a sender needs for one delivery attempt."""

    delivery_id: uuid.UUID
    channel: Channel
    address: str
    title: str | None
    body: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    secrets: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """A successful attempt: handed over (``sent``, a receipt will follow) or ``delivered``."""

    status: DeliveryStatus
    provider_message_id: str | None = None


class ChannelError(Exception):
    """A failed attempt; a permanent one is not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ChannelSender(Protocol):
    """An outbound channel."""

    channel: Channel

    async def send(self, message: OutboundMessage) -> SendOutcome:
        """Attempt one delivery."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
