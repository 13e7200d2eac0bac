"""Clock tables: one row per application and statutory limit, and the append-only ledger of each.

The truth of a clock is its start, its budget and its ledger (pauses, resumptions, the extension,
restarts after 补正). ``due_on``, ``warn_on``, ``is_paused``, ``provisional`` and ``used_days`` are
an index cache, recomputed whenever the ledger or the calendar changes, so that timers and the work
queue can find the clocks that need them with an index instead of re-deriving every clock.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Table, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from approval.models import Base
from govshared.db import UTCDateTime


class StopReason(StrEnum):
    """Why a clock stopped running."""

    ACCEPTED = "accepted"  # acceptance clock met by 受理
    DEEMED_ACCEPTED = "deemed_accepted"  # acceptance clock ran out: 视为受理 (Art. 32)
    REJECTED = "rejected"  # 不予受理
    SUPPLEMENT_REQUESTED = "supplement_requested"  # met by a 补正 notice; restarts on supplement
    INSTANT_DECISION = "instant_decision"  # 即办件: accepted and decided on the spot
    DECIDED = "decided"  # decision clock met by 准予/不予许可
    WITHDRAWN = "withdrawn"  # the applicant withdrew
    DELIVERED = "delivered"  # licence issued (Art. 44)


class LedgerEntryKind(StrEnum):
    """What a ledger entry records."""

    PAUSE = "pause"  # Art. 45 procedure starts
    RESUME = "resume"  # its result arrived
    EXTENSION = "extension"  # Art. 42, once, by the head
    RESTART = "restart"  # Art. 32: the complete 补正 arrived, the acceptance period runs again


RUNNING_SQL = text("stopped_on IS NULL")


class ApplicationClock(Base):
    """A statutory limit of one application: start, budget, committed limit, fired markers."""

    __tablename__ = "application_clocks"
    # The timers and a calendar change read running clocks only: partial indexes hold those (a few
    # thousand in a city, against every clock of every case ever decided), and stopping a clock
    # writes no entry to them (its row version no longer qualifies), as the outbox's and the
    # documents' pending indexes do for their queues.
    __table_args__ = (
        Index(
            "ix_application_clocks_running_due",
            "is_paused",
            "due_on",
            postgresql_where=RUNNING_SQL,
            sqlite_where=RUNNING_SQL,
        ),
        Index(
            "ix_application_clocks_running_warn",
            "is_paused",
            "warn_on",
            postgresql_where=RUNNING_SQL,
            sqlite_where=RUNNING_SQL,
        ),
    )

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    started_on: Mapped[date] = mapped_column(Date)
    budget_days: Mapped[int] = mapped_column(Integer)
    committed_days: Mapped[int | None] = mapped_column(Integer)
    # The one extension's ceiling: None for Art. 42(1)'s ten working days, 15 for an item handled
    # jointly (Art. 42(2)).
    extension_limit_days: Mapped[int | None] = mapped_column(Integer, default=None)
    stopped_on: Mapped[date | None] = mapped_column(Date)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    # index cache, derived from the ledger and the calendar
    due_on: Mapped[date] = mapped_column(Date)
    warn_on: Mapped[date] = mapped_column(Date)
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    used_days: Mapped[int | None] = mapped_column(Integer)
    # fired markers: each timer's event is emitted once, in the transaction that sets its marker
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ClockLedgerEntry(Base):
    """One append-only entry of a clock's ledger."""

    __tablename__ = "application_clock_entries"
    __table_args__ = (
        Index("ix_application_clock_entries_clock", "application_id", "kind", "recorded_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(16))
    entry: Mapped[str] = mapped_column(String(16))
    on_date: Mapped[date] = mapped_column(Date)
    days: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(2000))
    actor: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


application_clocks: Table = ApplicationClock.__table__  # type: ignore[assignment]
clock_entries: Table = ClockLedgerEntry.__table__  # type: ignore[assignment]
