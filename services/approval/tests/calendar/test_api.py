"""Calendar API on PostgreSQL and SQLite: public reads and calculator, admin writes, problems."""

from __future__ import annotations

import httpx

from govshared.auth import Role
from govshared.holidays import statutory_days
from govshared.testing import Tokens, problem, random_uscc

# 2031: 中秋 falls on 1 October, so the 办法 alone gives 10-01..03 and one day of 补假, 10-06; the
# notice (fictional, after the 2020 pattern, 国庆节如逢中秋节合并放假8天) adds the 调休 around it.
OCTOBER_2031 = [
    *({"date": f"2031-10-0{d}", "name": "国庆节、中秋节"} for d in range(1, 7)),
    {"date": "2031-10-07", "name": "国庆节", "in_lieu": True},
    {"date": "2031-10-08", "name": "国庆节", "in_lieu": True},
]
SCHEDULE_2031 = {
    "notice": "国办发明电〔2030〕9号（测试）",
    "holidays": [
        *(
            {"date": day.isoformat(), "name": holiday.name}
            for day, holiday in sorted(statutory_days(2031).items())
            if day.month != 10
        ),
        *OCTOBER_2031,
    ],
    "adjusted_workdays": [
        {"date": "2031-09-28", "name": "国庆节调休"},
        {"date": "2031-10-11", "name": "国庆节调休"},
    ],
}


async def test_year_lists_every_date_with_kind_source_and_flag(
    calendar_client: httpx.AsyncClient,
) -> None:
    response = await calendar_client.get("/api/v1/calendar/years/2021")
    assert response.status_code == 200
    body = response.json()
    assert body["provisional"] is False and body["source"] == "chinesecalendar"
    assert len(body["days"]) == 365
    day = {x["date"]: x for x in body["days"]}["2021-09-18"]
    assert day["kind"] == "adjusted_workday" and day["kind_label"] == "调休上班"
    assert day["is_working"] is True and day["provisional"] is False
    assert body["working_days"] == 250


async def test_provisional_year_is_flagged(calendar_client: httpx.AsyncClient) -> None:
    body = (await calendar_client.get("/api/v1/calendar/years/2027")).json()
    assert body["provisional"] is True and body["source"] == "provisional"
    assert all(x["provisional"] for x in body["days"])
    unseeded = (await calendar_client.get("/api/v1/calendar/years/2045")).json()
    assert unseeded["loaded"] is False and unseeded["provisional"] is True


async def test_a_provisional_year_keeps_the_statutory_holidays(
    calendar_client: httpx.AsyncClient,
) -> None:
    # 全国年节及纪念日放假办法 Art. 2 (as revised by Decree 795) and Art. 6 (补假); no 调休.
    body = (await calendar_client.get("/api/v1/calendar/years/2027")).json()
    days = {x["date"]: x for x in body["days"]}
    for day, name in (
        ("2027-01-01", "元旦"),
        ("2027-02-05", "春节"),  # 除夕
        ("2027-02-08", "春节"),  # 初三
        ("2027-02-09", "春节（补假）"),
        ("2027-02-10", "春节（补假）"),
        ("2027-04-05", "清明节"),
        ("2027-05-03", "劳动节（补假）"),
        ("2027-05-04", "劳动节（补假）"),
        ("2027-06-09", "端午节"),
        ("2027-09-15", "中秋节"),
        ("2027-10-01", "国庆节"),
        ("2027-10-05", "国庆节（补假）"),
    ):
        assert days[day]["kind"] == "holiday" and days[day]["name"] == name, day
        assert days[day]["is_working"] is False and days[day]["provisional"] is True
    assert days["2027-02-11"]["is_working"] is True
    assert days["2027-02-20"]["kind"] == "weekend"  # a 调休 working Saturday is not guessed
    assert body["working_days"] == 261 - 13
    # The calculator skips them: accepted the day before 除夕, one working day is 02-11.
    due = await calendar_client.get(
        "/api/v1/calendar/working-days/add", params={"start": "2027-02-04", "days": 1}
    )
    assert due.json()["due"] == "2027-02-11" and due.json()["depends_on_provisional"] is True
    assert "放假办法" in due.json()["notice"]
    # A year never stored follows the same rule: 2045-10-02/03 (Mon, Tue) are 国庆节.
    unseeded = (await calendar_client.get("/api/v1/calendar/years/2045")).json()
    national = {x["date"]: x for x in unseeded["days"]}["2045-10-03"]
    assert national["kind"] == "holiday" and national["source"] == "provisional"


async def test_calculator_answers_the_design_vectors(calendar_client: httpx.AsyncClient) -> None:
    for start, due in (("2021-09-17", "2021-10-21"), ("2021-02-05", "2021-03-10")):
        response = await calendar_client.get(
            "/api/v1/calendar/working-days/add", params={"start": start, "days": 20}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["due"] == due
        assert body["depends_on_provisional"] is False and body["notice"] is None
    count = await calendar_client.get(
        "/api/v1/calendar/working-days/count", params={"start": "2021-09-17", "end": "2021-10-21"}
    )
    assert count.json()["working_days"] == 20


async def test_calculator_shows_dependence_on_provisional_dates(
    calendar_client: httpx.AsyncClient,
) -> None:
    body = (
        await calendar_client.get(
            "/api/v1/calendar/working-days/add", params={"start": "2026-12-28", "days": 10}
        )
    ).json()
    assert body["depends_on_provisional"] is True
    assert body["provisional_years"] == [2027]
    assert "尚未公布" in body["notice"]


async def test_loading_an_official_year_moves_the_computed_dates(
    calendar_client: httpx.AsyncClient, tokens: Tokens
) -> None:
    params = {"start": "2031-09-30", "days": 1}
    before = (await calendar_client.get("/api/v1/calendar/working-days/add", params=params)).json()
    # Provisional, by the 办法: 10-01..03 off, 10-04/05 a weekend, 10-06 补假 (Arts. 2 and 6)
    assert before["due"] == "2031-10-07" and before["depends_on_provisional"] is True

    response = await calendar_client.put(
        "/api/v1/calendar/years/2031", json=SCHEDULE_2031, headers=tokens.staff(Role.ADMIN)
    )
    assert response.status_code == 200, response.text
    load = response.json()
    assert load["provisional"] is False and load["provisional_cleared"] == 365
    changed = {c["date"]: c for c in load["changed"]}
    # Only the 调休 was unknown: the statutory days were already off in the provisional year.
    assert set(changed) == {
        "2031-09-28",
        "2031-10-04",
        "2031-10-05",
        "2031-10-07",
        "2031-10-08",
        "2031-10-11",
    }
    assert changed["2031-10-07"] == {
        "date": "2031-10-07",
        "before": "weekday",
        "after": "adjusted_holiday",
        "working_changed": True,
    }
    assert changed["2031-10-04"]["working_changed"] is False  # a Saturday stays a day off
    assert changed["2031-09-28"]["after"] == "adjusted_workday"

    after = (await calendar_client.get("/api/v1/calendar/working-days/add", params=params)).json()
    assert after["due"] == "2031-10-09" and after["depends_on_provisional"] is False
    year = (await calendar_client.get("/api/v1/calendar/years/2031")).json()
    assert year["provisional"] is False and year["source"] == "official_notice"
    assert year["notice"] == SCHEDULE_2031["notice"]

    # Loading the same schedule again changes nothing.
    again = await calendar_client.put(
        "/api/v1/calendar/years/2031", json=SCHEDULE_2031, headers=tokens.staff(Role.ADMIN)
    )
    assert again.json()["changed"] == [] and again.json()["provisional_cleared"] == 0


async def test_writes_need_an_admin(calendar_client: httpx.AsyncClient, tokens: Tokens) -> None:
    url = "/api/v1/calendar/years/2032"
    anonymous = await calendar_client.put(url, json=SCHEDULE_2031)
    assert anonymous.status_code == 401 and problem(anonymous)["code"] == "unauthenticated"
    for headers in (tokens.enterprise(random_uscc()), tokens.staff(Role.APPROVER)):
        forbidden = await calendar_client.put(url, json=SCHEDULE_2031, headers=headers)
        assert forbidden.status_code == 403 and problem(forbidden)["code"] == "forbidden"
    closures = await calendar_client.post(
        "/api/v1/calendar/closures",
        json={"jurisdiction": "310000", "dates": ["2021-09-22"], "reason": "台风"},
        headers=tokens.staff(Role.HEAD),
    )
    assert closures.status_code == 403


async def test_invalid_schedules_are_problems(
    calendar_client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.staff(Role.ADMIN)
    wednesday = {"holidays": [], "adjusted_workdays": [{"date": "2032-10-06"}]}
    response = await calendar_client.put(
        "/api/v1/calendar/years/2032", json=wednesday, headers=admin
    )
    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "invalid_holiday_schedule"
    assert body["invalid_params"][0]["name"] == "adjusted_workdays.2032-10-06"
    wrong_year = {"holidays": [{"date": "2033-01-01"}], "adjusted_workdays": []}
    response = await calendar_client.put(
        "/api/v1/calendar/years/2032", json=wrong_year, headers=admin
    )
    assert problem(response)["code"] == "invalid_holiday_schedule"
    out_of_range = await calendar_client.get("/api/v1/calendar/years/2150")
    assert problem(out_of_range)["code"] == "calendar_year_out_of_range"
    too_long = await calendar_client.get(
        "/api/v1/calendar/days", params={"start": "2021-01-01", "end": "2022-06-30"}
    )
    assert problem(too_long)["code"] == "calendar_range_too_long"
    bad_days = await calendar_client.get(
        "/api/v1/calendar/working-days/add", params={"start": "2021-09-17", "days": -1}
    )
    assert problem(bad_days)["code"] == "validation_failed"


async def test_local_closures_move_deadlines_in_that_jurisdiction_only(
    calendar_client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.staff(Role.ADMIN)
    body = {"jurisdiction": "330000", "dates": ["2022-09-14"], "reason": "台风“梅花”停止办公"}
    created = await calendar_client.post("/api/v1/calendar/closures", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["added"] == ["2022-09-14"]
    repeated = await calendar_client.post("/api/v1/calendar/closures", json=body, headers=admin)
    assert repeated.json() == {
        "jurisdiction": "330000",
        "added": [],
        "already_closed": ["2022-09-14"],
        "moved_deadlines": 0,
    }

    async def due(jurisdiction: str | None) -> str:
        params: dict[str, str | int] = {"start": "2022-09-13", "days": 1}
        if jurisdiction:
            params["jurisdiction"] = jurisdiction
        response = await calendar_client.get("/api/v1/calendar/working-days/add", params=params)
        return str(response.json()["due"])

    assert await due(None) == "2022-09-14"
    assert await due("330106") == "2022-09-15"  # the province's closure closes its districts
    assert await due("310115") == "2022-09-14"

    days = (
        await calendar_client.get(
            "/api/v1/calendar/days",
            params={"start": "2022-09-14", "end": "2022-09-14", "jurisdiction": "330106"},
        )
    ).json()["days"]
    assert days[0]["closed_locally"] is True and days[0]["is_working"] is False
    listed = await calendar_client.get(
        "/api/v1/calendar/closures",
        params={"jurisdiction": "330000", "start": "2022-01-01", "end": "2022-12-31"},
    )
    assert [c["day"] for c in listed.json()] == ["2022-09-14"]

    removed = await calendar_client.delete(
        "/api/v1/calendar/closures/330000/2022-09-14", headers=admin
    )
    assert removed.status_code == 204
    gone = await calendar_client.delete(
        "/api/v1/calendar/closures/330000/2022-09-14", headers=admin
    )
    assert gone.status_code == 404 and problem(gone)["code"] == "closure_not_found"
    assert await due("330106") == "2022-09-14"


async def test_openapi_declares_the_calendar_problems(calendar_client: httpx.AsyncClient) -> None:
    schema = (await calendar_client.get("/openapi.json")).json()
    put = schema["paths"]["/api/v1/calendar/years/{year}"]["put"]
    assert {"401", "403", "422"} <= put["responses"].keys()
    assert "invalid_holiday_schedule" in put["responses"]["422"]["description"]
    assert "/api/v1/calendar/working-days/add" in schema["paths"]


async def test_clock_preview_derives_the_ledger(calendar_client: httpx.AsyncClient) -> None:
    body = {
        "kind": "decision",
        "started_on": "2021-09-17",
        "budget_days": 20,
        "committed_days": 10,
        "pauses": [
            {"reason": "expert_review", "started_on": "2021-09-22", "ended_on": "2021-09-29"}
        ],
        "as_of": "2021-10-26",
    }
    response = await calendar_client.post("/api/v1/calendar/clocks/preview", json=body)
    assert response.status_code == 200, response.text
    clock = response.json()
    assert clock["due_on"] == "2021-10-29" and clock["paused_days"] == 6
    assert clock["committed_due_on"] == "2021-10-15"  # 10 + 6 paused; 10-09 was worked
    assert (clock["state"], clock["state_label"], clock["remaining_days"]) == (
        "yellow",
        "临近到期",
        3,
    )
    assert clock["depends_on_provisional"] is False

    paused = {**body, "pauses": [{"reason": "hearing", "started_on": "2021-10-20"}]}
    clock = (await calendar_client.post("/api/v1/calendar/clocks/preview", json=paused)).json()
    assert clock["is_paused"] is True and clock["pause_reason_label"] == "听证"
    late = {**body, "pauses": [{"reason": "hearing", "started_on": "2021-10-25"}]}
    response = await calendar_client.post("/api/v1/calendar/clocks/preview", json=late)
    assert response.status_code == 409 and problem(response)["code"] == "invalid_clock_pause"

    not_art_45 = {**body, "pauses": [{"reason": "supplement", "started_on": "2021-09-22"}]}
    response = await calendar_client.post("/api/v1/calendar/clocks/preview", json=not_art_45)
    assert response.status_code == 422
    assert problem(response)["code"] == "pause_reason_not_allowed"
    too_long = {
        **body,
        "extension": {"days": 11, "granted_on": "2021-10-08", "reason": "x", "approved_by": "h"},
    }
    response = await calendar_client.post("/api/v1/calendar/clocks/preview", json=too_long)
    assert problem(response)["code"] == "extension_too_long"


async def test_clock_preview_refuses_out_of_bounds_input_before_computing(
    calendar_client: httpx.AsyncClient,
) -> None:
    """The public preview never answers 500: an extension beyond Art. 42's bound is invalid input
    and every date of the ledger must lie in the calendar's years (they overflowed the window)."""
    url = "/api/v1/calendar/clocks/preview"
    extension = {"granted_on": "2024-01-10", "reason": "x", "approved_by": "y"}
    body = {"started_on": "2024-01-02", "budget_days": 20, "as_of": "2024-01-15"}
    for days in (1_000_000_000_000, 16, 0, -5):
        response = await calendar_client.post(
            url, json={**body, "extension": {**extension, "days": days}}
        )
        assert response.status_code == 422, (days, response.text)
        refused = problem(response)
        assert refused["code"] == "validation_failed", days
        assert [p["name"] for p in refused["invalid_params"]] == ["body.extension.days"]
    hearing = {"reason": "hearing", "started_on": "9999-12-31"}
    huge = {**body, "extension": {**extension, "days": 1_000_000_000_000}, "pauses": [hearing]}
    assert (await calendar_client.post(url, json=huge)).status_code == 422
    ten = {**extension, "days": 10}
    for ledger in (
        {"pauses": [hearing], "extension": ten},
        {"pauses": [{"reason": "hearing", "started_on": "2024-01-05", "ended_on": "9999-12-31"}]},
        {"pauses": [{"reason": "hearing", "started_on": "0001-01-01"}]},
        {"extension": {**extension, "days": 10, "granted_on": "9999-12-31"}},
    ):
        response = await calendar_client.post(url, json={**body, **ledger})
        assert response.status_code == 422, (ledger, response.text)
        assert problem(response)["code"] == "calendar_year_out_of_range", ledger
    # Dates in the calendar's years but decades apart would be counted day by day (half a second
    # a request on this public endpoint): refused as too long a span.
    for ledger in (
        {"as_of": "2100-12-31"},
        {"pauses": [{"reason": "hearing", "started_on": "2024-01-05", "ended_on": "2099-01-04"}]},
    ):
        response = await calendar_client.post(url, json={**body, **ledger})
        assert response.status_code == 422, (ledger, response.text)
        assert problem(response)["code"] == "calendar_range_too_long", ledger
    # the bound the law sets is still a domain answer, and a lawful ledger is derived
    response = await calendar_client.post(
        url, json={**body, "extension": {**extension, "days": 11}}
    )
    assert problem(response)["code"] == "extension_too_long"
    response = await calendar_client.post(url, json={**body, "extension": ten})
    assert response.status_code == 200, response.text
    assert response.json()["extension_days"] == 10


async def test_closures_outside_the_calendar_years_are_refused_and_nothing_is_written(
    calendar_client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = tokens.staff(Role.ADMIN)
    for dates in (["0001-01-01"], ["2022-09-14", "9999-12-31"], ["2003-12-31"]):
        body = {"jurisdiction": "330000", "dates": dates, "reason": "停止办公"}
        response = await calendar_client.post("/api/v1/calendar/closures", json=body, headers=admin)
        assert response.status_code == 422, (dates, response.text)
        assert problem(response)["code"] == "calendar_year_out_of_range", dates
    listed = await calendar_client.get(
        "/api/v1/calendar/closures",
        params={"jurisdiction": "330000", "start": "2022-01-01", "end": "2022-12-31"},
    )
    assert listed.status_code == 200 and listed.json() == []  # not even the valid date
    for day in ("0001-01-01", "9999-12-31"):
        response = await calendar_client.delete(
            f"/api/v1/calendar/closures/310000/{day}", headers=admin
        )
        assert response.status_code == 422, (day, response.text)
        assert problem(response)["code"] == "calendar_year_out_of_range", day
