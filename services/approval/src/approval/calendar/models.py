"""Calendar tables: one row per date, the years loaded, local closure days per jurisdiction."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from approval.models import Base
from govshared.db import UTCDateTime


class CalendarDayRow(Base):
    """A date of the national working-day calendar."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    source: Mapped[str] = mapped_column(String(24))
    provisional: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CalendarYearRow(Base):
    """A year the calendar holds, where its schedule came from and whether it is provisional."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(24))
    provisional: Mapped[bool] = mapped_column(Boolean)
    notice: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LocalClosureRow(Base):
    """A day a jurisdiction's offices are closed (e.g. 台风停工), on top of the national calendar."""

    __tablename__ = "calendar_closures"
    __table_args__ = (Index("ix_calendar_closures_day", "day"),)

    jurisdiction: Mapped[str] = mapped_column(String(12), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Core handles for the bulk statements (seeding writes thousands of rows).
calendar_days: Table = CalendarDayRow.__table__  # type: ignore[assignment]
calendar_years: Table = CalendarYearRow.__table__  # type: ignore[assignment]
calendar_closures: Table = LocalClosureRow.__table__  # type: ignore[assignment]
