"""The suite's one time zone agrees with the tz database wherever the suite counts days."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from govshared.chinatime import CHINA, CHINA_ZONE_NAME


def test_the_fixed_offset_is_asia_shanghai_since_daylight_saving_ended() -> None:
    zone = ZoneInfo(CHINA_ZONE_NAME)
    at = datetime(1992, 1, 1, tzinfo=UTC)
    while at.year < 2100:
        assert at.astimezone(CHINA).utcoffset() == at.astimezone(zone).utcoffset()
        at += timedelta(days=7, hours=5)


def test_a_day_ends_at_midnight_in_beijing() -> None:
    late_utc = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 00:00 on 1 January in Beijing
    assert late_utc.astimezone(CHINA).date() == date(2027, 1, 1)
