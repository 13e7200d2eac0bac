"""A provisional year keeps the statutory holidays, deadlines included (全国年节及纪念日放假办法).

On PostgreSQL and SQLite, through the REST API: a database seeded when provisional years were
"weekends only" is brought in step with Arts. 2 and 6 of the 办法 at the next start, and the running
clocks over it are re-derived and announced; the official schedule then only adds the 调休.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from approval.calendar.models import calendar_days
from approval.calendar.repository import CalendarRepository
from approval.calendar.sources import dates_of_year
from approval.calendar.workdays import CalendarDay, DaySource, default_kind
from approval.catalogue.demo import required_materials
from approval.config import Settings
from approval.context import context_of
from approval.db import outbox_events
from approval.main import create_app
from govshared.auth import Role
from govshared.db import mark_read_only
from govshared.events import EventType
from govshared.testing import Tokens, random_uscc

from ..conftest import LICENSE_URL, license_standin

D = date.fromisoformat
RADIO = {
    "item_code": "JXW-XK-003",
    "applicant_name": "上海无线示范有限公司",
    "form": {"station_type": "固定台站"},
}
YEAR = 2035  # 国庆节 10-01..03 is Monday to Wednesday; no test seeds this year otherwise


@pytest.fixture
def set_today(app: FastAPI) -> Iterator[Callable[[str], None]]:
    """Set the service's China date; restored after the test."""
    today = context_of(app).today

    def setter(day: str) -> None:
        today.pin(D(day))

    yield setter
    today.pin(None)


async def _clocks(client: httpx.AsyncClient, app_id: str, headers: dict[str, str]) -> dict:
    response = await client.get(f"/api/v1/applications/{app_id}/clocks", headers=headers)
    assert response.status_code == 200, response.text
    return {c["kind"]: c for c in response.json()["clocks"]}


async def test_a_weekends_only_year_is_recomputed_at_start_and_deadlines_follow(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: Tokens,
    set_today: Callable[[str], None],
    settings_factory: Callable[..., Settings],
) -> None:
    # A year as the calendar stored it before: weekends only, flagged provisional.
    async with app.state.sessionmaker() as session, session.begin():
        legacy = [
            CalendarDay(d, default_kind(d), DaySource.PROVISIONAL, provisional=True)
            for d in dates_of_year(YEAR)
        ]
        await CalendarRepository(session).insert_years(
            legacy,
            [
                {
                    "year": YEAR,
                    "source": "provisional",
                    "provisional": True,
                    "notice": None,
                    "updated_by": "seed",
                    "updated_at": datetime.now(UTC),
                }
            ],
            now=datetime.now(UTC),
        )
    uscc = random_uscc()
    set_today(f"{YEAR}-09-24")  # a Monday
    submitted = await client.post(
        "/api/v1/applications", json=RADIO, headers=tokens.enterprise(uscc)
    )
    assert submitted.status_code == 201, submitted.text
    app_id = str(submitted.json()["id"])
    # 容缺受理 of the materials the guide requires (this test uploads none).
    tolerated = {
        "tolerated_materials": required_materials("JXW-XK-003"),
        "deliver_by": "2099-12-31",
    }
    accepted = await client.post(
        f"/api/v1/applications/{app_id}/accept", json=tolerated, headers=tokens.staff(Role.ACCEPTOR)
    )
    assert accepted.status_code == 200, accepted.text
    before = (await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]
    assert before["due_on"] == f"{YEAR}-10-22"  # 20 working days with 国庆节 counted as work

    # The next start of the service (another process on the same database) recomputes the year.
    restarted = create_app(
        settings_factory(), http_mounts={LICENSE_URL: httpx.MockTransport(license_standin)}
    )
    async with restarted.router.lifespan_context(restarted):
        pass

    year = (await client.get(f"/api/v1/calendar/years/{YEAR}")).json()
    assert year["provisional"] is True and year["source"] == "provisional"
    days = {x["date"]: x for x in year["days"]}
    for day, name in (
        ("01-01", "元旦"),
        ("02-07", "春节"),  # 除夕
        ("02-10", "春节"),  # 初三, a Saturday
        ("02-12", "春节（补假）"),  # Art. 6: Monday for the Saturday
        ("04-05", "清明节"),
        ("05-02", "劳动节"),
        ("06-11", "端午节（补假）"),  # 端午 06-10 is a Sunday
        ("09-17", "中秋节（补假）"),  # 中秋 09-16 is a Sunday
        ("10-03", "国庆节"),
    ):
        entry = days[f"{YEAR}-{day}"]
        assert (entry["kind"], entry["name"], entry["is_working"]) == ("holiday", name, False)
        assert entry["provisional"] is True
    assert days[f"{YEAR}-10-04"]["is_working"] is True  # no 调休 is guessed
    assert year["working_days"] == 261 - 13  # weekdays less the 13 days of Art. 2 (with 补假)

    after = (await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]
    assert after["due_on"] == f"{YEAR}-10-25" and after["depends_on_provisional"] is True
    async with app.state.sessionmaker() as session:
        await mark_read_only(session)
        events = list(
            (
                await session.execute(
                    select(outbox_events.c.payload).where(
                        outbox_events.c.event_type == str(EventType.APPLICATION_CLOCK_WARNING),
                        outbox_events.c.destination == "notify",
                        outbox_events.c.payload.contains(app_id),
                    )
                )
            ).scalars()
        )
        stored = (
            await session.execute(
                select(calendar_days.c.name).where(calendar_days.c.day == D(f"{YEAR}-10-01"))
            )
        ).scalar_one()
    assert len(events) == 1
    compact = events[0].replace(" ", "")
    assert '"reason":"calendar_changed"' in compact
    assert f'"old_due_on":"{YEAR}-10-22"' in compact and f'"new_due_on":"{YEAR}-10-25"' in compact
    assert stored == "国庆节"

    # A second start finds the year in step: nothing rewritten, nothing announced again.
    again = create_app(
        settings_factory(), http_mounts={LICENSE_URL: httpx.MockTransport(license_standin)}
    )
    async with again.router.lifespan_context(again):
        pass
    assert (await _clocks(client, app_id, tokens.enterprise(uscc)))["decision"]["due_on"] == (
        f"{YEAR}-10-25"
    )
