"""A webhook's body: the envelope stored at fan-out (ids, cause event, sealed document) and the
rendered text added to it, then and again when a dead delivery is replayed."""

from __future__ import annotations

import uuid
from typing import Any

from govshared.events import CloudEvent
from notify.documents import document_reference
from notify.templates import Rendered

_WEBHOOK_HEAD = ("delivery_id", "notification_id", "critical")
# What an event's ``details`` say about staff that an enterprise's system is not told: the account
# of the colleague a delegate acted for and the delegation (approval's review chains).
_STAFF_ONLY_DETAILS = ("on_behalf_of", "delegation_id")


def _for_the_enterprise(data: dict[str, Any]) -> dict[str, Any]:
    """The cause event's data as a webhook carries it: without ``_STAFF_ONLY_DETAILS``."""
    details = data.get("details")
    if not isinstance(details, dict) or not any(k in details for k in _STAFF_ONLY_DETAILS):
        return data
    kept = {k: v for k, v in details.items() if k not in _STAFF_ONLY_DETAILS}
    return {**data, "details": kept}


def webhook_envelope(
    *,
    delivery_id: uuid.UUID,
    notice_id: uuid.UUID,
    critical: bool,
    event: CloudEvent,
    context: dict[str, Any],
) -> dict[str, Any]:
    """A webhook's body without its text: the ids, the cause event and any sealed document."""
    envelope: dict[str, Any] = {
        "delivery_id": str(delivery_id),
        "notification_id": str(notice_id),
        "critical": critical,
        "event": {
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "time": event.time.isoformat(),
            "data": _for_the_enterprise(event.data),
        },
    }
    reference = document_reference(context)
    if reference is not None:
        # The reference and links, never the file: the receiver fetches it if it wants it.
        envelope["document"] = reference
    return envelope


def webhook_payload(envelope: dict[str, Any], rendered: Rendered) -> dict[str, Any]:
    """A webhook's body: its envelope (``webhook_envelope``) with the rendered title and body, at
    fan-out and again at a replay after the template was fixed."""
    head = {key: envelope[key] for key in _WEBHOOK_HEAD}
    rest = {k: v for k, v in envelope.items() if k not in (*_WEBHOOK_HEAD, "title", "body")}
    return {**head, "title": rendered.title, "body": rendered.body, **rest}


def webhook_ready(payload: Any) -> bool:
    """Whether a webhook's stored body is complete (its text rendered, its event there)."""
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("body"), str)
        and isinstance(payload.get("event"), dict)
    )


def webhook_replayable(payload: Any) -> bool:
    """Whether a webhook's stored body has the envelope a re-render completes."""
    return isinstance(payload, dict) and all(k in payload for k in (*_WEBHOOK_HEAD, "event"))
