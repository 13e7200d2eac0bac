"""The licence timers' rules: renewal reminders before expiry, and at expiry either the deemed
renewal of a timely renewal application (Art. 50) or expiry and 注销 (Art. 70(1)). The worker
(``licensing.worker.LicenceTimers``) runs them in batches, one transaction each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from govshared.auth import Principal, Role
from govshared.events import EventType
from licensing import clock
from licensing.licences.lifecycle import LicenceLifecycle
from licensing.licences.records import LIVE, LicenceRecords
from licensing.licences.repository import loaded

TIMER_ACTOR = "system:licence-timer"


@dataclass(slots=True)
class TimerRun:
    """What one pass of the licence timers did."""

    reminded: int = 0
    deemed_renewed: int = 0
    expired: int = 0
    reinstated: int = 0
    licence_nos: list[str] = field(default_factory=list)


class LicenceTimerRules:
    """One batch of the timers in one transaction; each step returns how many rows it claimed."""

    def __init__(self, records: LicenceRecords) -> None:
        self.records = records
        self.repository = records.repository
        self.policy = records.policy
        self.lifecycle = LicenceLifecycle(records)

    async def expire_due(self, *, today: date, limit: int, run: TimerRun) -> int:
        """Past their last day: a timely renewal pending is deemed granted (Art. 50); any other
        licence expires and is 注销 (Art. 70(1))."""
        claimed = await self.repository.claim_expired(today=today, limit=limit)
        for licence in claimed:
            if (
                licence.status in LIVE
                and licence.renewal_requested_on is not None
                and licence.renewal_timely
            ):
                source = (
                    {
                        "source_application_id": licence.renewal_application_id,
                        "source_application_no": licence.renewal_application_no,
                    }
                    if licence.renewal_application_id
                    else None
                )
                await self.lifecycle.renew(licence, deemed=True, actor=TIMER_ACTOR, source=source)
                run.deemed_renewed += 1
            else:
                await self.lifecycle.acts.expire(licence, today=today, actor=TIMER_ACTOR)
                run.expired += 1
            run.licence_nos.append(licence.licence_no)
        return len(claimed)

    async def end_suspensions(self, *, today: date, limit: int, run: TimerRun) -> int:
        """暂扣 is a penalty for a term (行政处罚法 第九条): the day after its last day the licence is
        valid again, as staff's 恢复 would make it, and the public verification says so."""
        claimed = await self.repository.claim_ended_suspensions(today=today, limit=limit)
        for licence in claimed:
            until = (licence.act_details or {}).get("suspended_until")
            await self.lifecycle.reinstate(
                licence,
                reason=f"暂扣期限（至{until}）届满，证照恢复有效（《行政处罚法》第九条）",
                actor=Principal(subject=TIMER_ACTOR, role=Role.SERVICE),
            )
            run.reinstated += 1
            run.licence_nos.append(licence.licence_no)
        return len(claimed)

    async def send_reminders(self, *, today: date, limit: int, run: TimerRun) -> int:
        """Renewal reminders at each configured number of days before expiry."""
        thresholds = sorted(self.policy.reminder_days, reverse=True)
        if not thresholds:
            return 0
        claimed = await self.repository.claim_reminders(
            today=today, thresholds=thresholds, limit=limit
        )
        for licence in claimed:
            assert licence.valid_until is not None
            days_left = (licence.valid_until - today).days
            stage = sum(1 for days in thresholds if days_left <= days)
            if stage <= licence.renewal_reminders_sent:
                continue
            apply_by = self.policy.renewal_apply_by(licence)
            assert apply_by is not None
            reason = f"证照将于{licence.valid_until}到期（剩余{days_left}天），" + (
                f"请于{apply_by}前申请延续（《行政许可法》第五十条）"
                if today <= apply_by
                else f"延续申请应当在{apply_by}前提出，现已逾期，届满前未作决定的不视为准予延续"
            )
            # updated_at too: a change writing its new version from an earlier read must not
            # carry the count from before this reminder (the reminder would come again).
            values = {"renewal_reminders_sent": stage, "updated_at": clock.now()}
            if not await self.repository.set_status(
                licence_id=licence.id, expected=licence.status, values=values
            ):
                continue
            loaded(licence, values)
            await self.records.emit(
                licence, EventType.LICENCE_RENEWAL_DUE, status=licence.status, reason=reason
            )
            run.reminded += 1
            run.licence_nos.append(licence.licence_no)
        return len(claimed)
