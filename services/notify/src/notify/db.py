"""Notify's tables: metadata shared by the models, the migrations and the Core statements."""

from __future__ import annotations

from govshared.db import new_metadata
from govshared.idempotency import idempotency_table
from govshared.inbox import inbox_table
from govshared.outbox import outbox_table

metadata = new_metadata()
outbox_events = outbox_table(metadata)
inbox_events = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
