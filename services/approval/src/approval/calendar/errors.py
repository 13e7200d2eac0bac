"""Calendar and clock errors: each a stable code with Chinese and English titles."""

from __future__ import annotations

from govshared.problems import Conflict, DomainError, NotFound


class YearOutOfRange(DomainError):
    status = 422
    code = "calendar_year_out_of_range"
    title = "年份超出工作日历支持的范围"
    title_en = "Year outside the range the working-day calendar supports"


class DateRangeTooLong(DomainError):
    status = 422
    code = "calendar_range_too_long"
    title = "查询的日期范围过长或起止顺序错误"
    title_en = "Date range too long or reversed"


class InvalidHolidaySchedule(DomainError):
    status = 422
    code = "invalid_holiday_schedule"
    title = "放假安排数据无效"
    title_en = "Invalid official holiday schedule"


class InvalidJurisdiction(DomainError):
    status = 422
    code = "invalid_jurisdiction"
    title = "行政区划代码无效"
    title_en = "Invalid jurisdiction code"


class ClosureNotFound(NotFound):
    code = "closure_not_found"
    title = "该地区在此日期没有停止办公安排"
    title_en = "No local closure for this jurisdiction on this date"


class PauseReasonNotAllowed(DomainError):
    """Only the Art. 45 procedures stop the clock."""

    status = 422
    code = "pause_reason_not_allowed"
    title = "只有听证、招标、拍卖、检验、检测、检疫、鉴定和专家评审所需时间可以不计入期限"
    title_en = "Only the procedures of Art. 45 may pause the clock"


class InvalidPause(Conflict):
    code = "invalid_clock_pause"
    title = "当前计时状态不允许中止或恢复计时"
    title_en = "The clock cannot be paused or resumed in its current state"


class ExtensionAlreadyGranted(Conflict):
    code = "extension_already_granted"
    title = "期限只能延长一次"
    title_en = "The time limit may be extended only once"


class ExtensionTooLong(DomainError):
    status = 422
    code = "extension_too_long"
    title = "延长期限超过法定上限（十个工作日；统一、联合、集中办理的十五个工作日）"
    title_en = "An extension may not exceed 10 working days (15 for jointly handled items)"


class ExtensionNotAllowed(Conflict):
    code = "extension_not_allowed"
    title = "该期限不允许延长或已届满"
    title_en = "This time limit cannot be extended (wrong clock or already expired)"
