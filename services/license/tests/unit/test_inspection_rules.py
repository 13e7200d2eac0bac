"""What 一公开 publishes of a holder, and license's working-day count."""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace

import pytest

from govshared.events import CloudEvent, EventType, LicenceEventData, parse_data
from licensing.config import Settings
from licensing.inspections.corrections import act_endpoint
from licensing.inspections.models import ProposedAct
from licensing.inspections.notices import licence_event
from licensing.inspections.reports import public_name
from licensing.workdays import add_working_days, is_working_day


def test_an_individual_business_name_is_masked() -> None:
    # 92…: 登记管理部门 9 (市场监管), 机构类别 2 (个体工商户): often its owner's own name.
    assert public_name("张三", "92310115MA1K4B7X2L") == "张**"
    assert public_name("浦东新区李四小吃店", "92310115MA1K4B7X2L") == "浦********"


@pytest.mark.parametrize("uscc", ["91310000MA1FL0ABCD", "93310115MA1K4B7X2L", "12310000425006117P"])
def test_an_organisation_name_is_published(uscc: str) -> None:
    assert public_name("上海盐业示范有限公司", uscc) == "上海盐业示范有限公司"


def test_working_days_skip_weekends_and_the_national_holidays() -> None:
    # 2026-09-30 (Wed) + 1 working day: 国庆 1–7 Oct and the weekend, so 8 October 2026.
    assert not is_working_day(date(2026, 10, 1))
    assert add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    # A year the library does not know falls back to the weekend rule.
    assert add_working_days(date(2099, 1, 2), 1) == date(2099, 1, 5)


def test_a_proposal_points_at_the_licence_act_that_carries_it_out() -> None:
    assert act_endpoint("YDP-1", ProposedAct.REVOCATION) == "/api/v1/licences/YDP-1/revocation"
    # A penalty starts with its notice of rights (行政处罚法 Art. 44).
    assert act_endpoint("YDP-1", ProposedAct.SUSPENSION).endswith("/penalty-notices")


def test_ratios_must_rise_with_risk() -> None:
    with pytest.raises(ValueError, match="higher ratio"):
        Settings(inspection_ratios={"A": 0.5, "B": 0.1, "C": 0.2, "D": 0.3})
    with pytest.raises(ValueError, match="A, B, C and D"):
        Settings(inspection_ratios={"A": 0.1})


def test_working_days_keep_the_statutory_holidays_in_a_year_not_yet_published() -> None:
    """全国年节及纪念日放假办法 Arts. 2 and 6: 2027 has no official schedule in chinesecalendar, yet
    国庆 (1–3 October 2027, a Friday to a Sunday) closes offices on the Friday and gives the Saturday
    and Sunday back as 补假 on Monday 4 and Tuesday 5 October."""
    assert not is_working_day(date(2027, 10, 1))
    assert not is_working_day(date(2027, 10, 4)) and not is_working_day(date(2027, 10, 5))
    assert is_working_day(date(2027, 10, 6))
    # 5 working days after Thursday 30 September 2027: 6, 7, 8, 11, 12 October.
    assert add_working_days(date(2027, 9, 30), 5) == date(2027, 10, 12)
    # In a published year the official schedule rules, 调休 included: 2026's 国庆 break ran
    # 1–7 October and Saturday 10 October was a working day.
    assert add_working_days(date(2026, 9, 30), 5) == date(2026, 10, 13)


def test_a_notice_built_from_the_register_is_the_event_the_contract_validates() -> None:
    licence = SimpleNamespace(
        id=uuid.uuid4(),
        licence_no="JY31000012345678",
        licence_type="salt_wholesale_certificate",
        holder_name="上海盐业示范有限公司",
        holder_uscc="91350100M000100Y43",
        status="valid",
        valid_until=date(2029, 1, 31),
        source_application_id=uuid.uuid4(),
    )
    inspection_id = uuid.uuid4()
    event = licence_event(
        licence,
        EventType.LICENCE_INSPECTION_SCHEDULED,
        reason="双随机抽查",
        extra={"inspection_id": inspection_id, "inspection_due_on": date(2027, 1, 8)},
    )
    posted = CloudEvent.model_validate_json(event.model_dump_json())
    data = parse_data(posted)
    assert isinstance(data, LicenceEventData)
    validated = LicenceEventData(
        licence_id=licence.id,
        licence_no=licence.licence_no,
        licence_type=licence.licence_type,
        holder_name=licence.holder_name,
        holder_uscc=licence.holder_uscc,
        status="valid",
        valid_until=licence.valid_until,
        application_id=licence.source_application_id,
        reason="双随机抽查",
        occurred_at=data.occurred_at,
        inspection_id=inspection_id,
        inspection_due_on=date(2027, 1, 8),
    )
    assert posted.data == validated.model_dump(mode="json")
    assert posted.subject == licence.licence_no and posted.source == "/services/license"
