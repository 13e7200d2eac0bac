"""The law's acts on a licence, each its own record, event and notice.

- 撤销 (行政许可法 Art. 69): the grant was unlawful (obtained by fraud or bribery, granted beyond
  power, …); its legal basis is required.
- 撤回 (Art. 8): the law the licence rests on changed, or the objective circumstances did, and the
  public interest requires it; the holder is told how its loss is compensated.
- 吊销 and 暂扣许可证件: administrative penalties (行政处罚法 Art. 9). Before the decision the holder
  is told the facts, the basis and its rights of statement, defence and hearing (Art. 44); a hearing
  asked for within 5 working days of the notice is held (Arts. 63, 64, 85); the decision cites the
  行政处罚决定书.
- 注销 (Art. 70): the record that ends a licence: on its own ground (the holder's termination or
  death, force majeure, the holder's application under the item's guide, another statute) or after
  expiry without renewal and after 撤销, 撤回 or 吊销 (Art. 70(1) and (4)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from govshared.chinatime import CHINA
from govshared.events import EventType
from licensing import clock
from licensing.errors import HearingRightsNotRespected, LicenceNotActive, PenaltyNoticeRequired
from licensing.licences.records import LIVE, RENEWAL_CLEARED, LicenceRecords
from licensing.licences.repository import history_row
from licensing.licences.schemas import (
    Hearing,
    IntendedPenalty,
    PenaltyBody,
    PenaltyNotice,
    WithdrawalBody,
)
from licensing.models import (
    CANCELLATION_GROUND_LABELS,
    CancellationGround,
    Licence,
    LicenceAction,
    LicenceHistory,
    LicenceStatus,
)
from licensing.workdays import add_working_days

# 行政处罚法 Art. 64(1): a hearing is asked for within 5 days of the notice, and Art. 85 makes
# those working days (不含法定节假日): a stated deadline earlier than that takes a right away.
HEARING_REQUEST_WORKING_DAYS = 5
PENALTY_LAW = "《中华人民共和国行政处罚法》"
PENALTY_LABELS = {
    IntendedPenalty.PENALTY_REVOCATION: "吊销许可证件",
    IntendedPenalty.SUSPENSION: "暂扣许可证件",
}
# The history entry of each penalty's decision (it uses up the notices served before it).
PENALTY_ACTIONS = {
    IntendedPenalty.PENALTY_REVOCATION: LicenceAction.PENALTY_REVOKED,
    IntendedPenalty.SUSPENSION: LicenceAction.SUSPENDED,
}


def act_fields(licence: Licence) -> dict[str, Any]:
    """What a licence event says of the act behind the licence's status (for the notice)."""
    details = licence.act_details or {}
    return {
        "act_on": licence.act_on,
        "legal_basis": licence.act_basis,
        "compensation_note": details.get("compensation_note"),
        "penalty_decision_no": details.get("penalty_decision_no"),
        "rights_notified_on": details.get("rights_notified_on"),
        "hearing": details.get("hearing"),
        "suspended_until": details.get("suspended_until"),
        "cancelled_on": licence.cancelled_on,
        "cancellation_ground": licence.cancellation_ground,
    }


@dataclass(frozen=True, slots=True)
class ServedNotice:
    """The 行政处罚事先告知 a penalty decision rests on, as the register recorded it, and the day
    notify proved it reached the holder (None: no proof of service yet)."""

    notified_on: date
    hearing_request_deadline: date
    served_on: date | None = None


def _proved_on(entry: LicenceHistory) -> date:
    """The China date of a proof of service (送达) in a licence's history."""
    return entry.occurred_at.astimezone(CHINA).date()


def served_notice(
    history: Sequence[LicenceHistory], penalty: IntendedPenalty, *, holder_uscc: str
) -> ServedNotice | None:
    """The latest notice of ``penalty`` in a licence's history (oldest first) not yet followed
    by a decision of that penalty: a decision uses up the notices before it, so a licence
    suspended, reinstated and suspended again is told again first. With the first day notify
    proved it delivered to the holder (its ``notice_served`` entry naming the notice's event and
    the holder as recipient, not a copy to staff; a notice recorded before notices named their
    event: the first such proof of a penalty notice after it)."""
    decided = PENALTY_ACTIONS[penalty].value
    found: LicenceHistory | None = None
    for entry in history:
        details = entry.details or {}
        if entry.action == LicenceAction.PENALTY_NOTIFIED.value:
            if details.get("penalty") == penalty.value:
                found = entry
        elif entry.action == decided:
            found = None
    if found is None:
        return None
    details = found.details or {}
    event_id = details.get("notice_event_id")
    proofs = [
        entry
        for entry in history
        if entry.action == LicenceAction.NOTICE_SERVED.value
        and (entry.details or {}).get("cause_event_type") == EventType.LICENCE_PENALTY_NOTIFIED
        and (entry.details or {}).get("recipient") == holder_uscc
        and (
            (entry.details or {}).get("cause_event_id") == event_id
            if event_id is not None
            else entry.occurred_at >= found.occurred_at
        )
    ]
    return ServedNotice(
        notified_on=date.fromisoformat(details["rights_notified_on"]),
        hearing_request_deadline=date.fromisoformat(details["hearing_request_deadline"]),
        served_on=min((_proved_on(p) for p in proofs), default=None),
    )


def check_hearing(
    body: PenaltyBody, notice: ServedNotice, *, today: date, suspension: bool
) -> None:
    """A penalty is decided only after the notice of rights, and after the hearing if asked for.
    The dates are the recorded notice's; those the body gives must be the same."""
    notified_on = notice.notified_on
    deadline = notice.hearing_request_deadline
    if body.rights_notified_on is not None and body.rights_notified_on != notified_on:
        raise HearingRightsNotRespected(
            f"行政处罚事先告知书于{notified_on.isoformat()}送达，"
            f"与所填送达日期{body.rights_notified_on.isoformat()}不符"
        )
    if body.hearing_request_deadline is not None and body.hearing_request_deadline != deadline:
        raise HearingRightsNotRespected(
            f"告知书载明的听证申请期限为{deadline.isoformat()}，"
            f"与所填期限{body.hearing_request_deadline.isoformat()}不符"
        )
    if notified_on > today:
        raise HearingRightsNotRespected("行政处罚事先告知的送达日期不得晚于决定日期")
    if body.hearing is Hearing.HELD:
        assert body.hearing_held_on is not None  # the schema requires it
        if not notified_on <= body.hearing_held_on <= today:
            raise HearingRightsNotRespected("听证日期应当在事先告知之后、处罚决定之前")
    elif body.hearing is Hearing.NOT_REQUESTED:
        earliest = add_working_days(notified_on, HEARING_REQUEST_WORKING_DAYS)
        if deadline < earliest:
            raise HearingRightsNotRespected(
                "告知书载明的听证申请期限短于法定的五个工作日（《行政处罚法》第六十四条、第八十五条）"
            )
        # Art. 64(1): five days after the holder is told (告知后五日内), that is after the notice
        # reached it: silence is "not requested" only once notify has proved the service, and
        # the five working days run from the day it did, however late, whatever the notice said.
        if notice.served_on is None:
            raise HearingRightsNotRespected(
                "行政处罚事先告知书尚无送达记录，当事人未被告知的，不能认定其未要求听证"
                "（《行政处罚法》第四十四条、第六十四条）"
            )
        last_day = max(
            deadline,
            add_working_days(max(notice.served_on, notified_on), HEARING_REQUEST_WORKING_DAYS),
        )
        if today <= last_day:
            raise HearingRightsNotRespected(
                f"当事人可在{last_day.isoformat()}前要求听证，期限届满前不得作出处罚决定"
            )
    if suspension and body.suspended_until is not None and body.suspended_until <= today:
        raise HearingRightsNotRespected("暂扣期限应当晚于决定日期")


class LicenceActs:
    """撤销, 撤回, 吊销, 暂扣 and 注销 on the register; each writes its history and its event."""

    def __init__(self, records: LicenceRecords) -> None:
        self.records = records

    async def revoke(
        self,
        licence: Licence,
        *,
        legal_basis: str,
        reason: str,
        actor: str,
        compensation_note: str | None = None,
    ) -> Licence:
        """撤销 (Art. 69), followed by 注销 (Art. 70(4))."""
        details = {"compensation_note": compensation_note} if compensation_note else {}
        await self._end(
            licence,
            to=LicenceStatus.REVOKED,
            action=LicenceAction.REVOKED,
            ground=CancellationGround.REVOKED,
            legal_basis=legal_basis,
            reason=reason,
            details=details,
            actor=actor,
            event_type=EventType.LICENCE_REVOKED,
        )
        return licence

    async def withdraw(self, licence: Licence, *, body: WithdrawalBody, actor: str) -> Licence:
        """撤回 (Art. 8) with the compensation the holder is told of, followed by 注销."""
        await self._end(
            licence,
            to=LicenceStatus.WITHDRAWN,
            action=LicenceAction.WITHDRAWN,
            ground=CancellationGround.WITHDRAWN,
            legal_basis=body.legal_basis,
            reason=body.reason,
            details={"compensation_note": body.compensation_note},
            actor=actor,
            event_type=EventType.LICENCE_WITHDRAWN,
        )
        return licence

    async def notify_penalty(self, licence: Licence, *, body: PenaltyNotice, actor: str) -> Licence:
        """行政处罚事先告知 (行政处罚法 Art. 44): the holder is told the intended 吊销 or 暂扣, its
        facts and basis, and its rights of statement, defence and hearing, before any decision."""
        today = clock.today()
        earliest = add_working_days(today, HEARING_REQUEST_WORKING_DAYS)
        if body.hearing_request_deadline < earliest:
            raise HearingRightsNotRespected(
                "听证申请期限不得短于告知后五个工作日（《行政处罚法》第六十四条、第八十五条）"
            )
        allowed = (
            (LicenceStatus.VALID,)
            if body.penalty is IntendedPenalty.SUSPENSION
            else (LicenceStatus.VALID, LicenceStatus.SUSPENDED)
        )
        if licence.status not in allowed:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前状态不能拟作出该处罚")
        label = PENALTY_LABELS[body.penalty]
        reason = f"拟{label}：{body.reason}"
        notice_event_id = await self.records.emit(
            licence,
            EventType.LICENCE_PENALTY_NOTIFIED,
            status=licence.status,
            reason=body.reason,
            act={
                "legal_basis": body.legal_basis,
                "rights_notified_on": today,
                "intended_penalty": body.penalty.value,
                "hearing_request_deadline": body.hearing_request_deadline,
            },
        )
        details = {
            "penalty": body.penalty.value,
            "legal_basis": body.legal_basis,
            "rights_notified_on": today.isoformat(),
            "hearing_request_deadline": body.hearing_request_deadline.isoformat(),
            # notify's proof of service (送达) of this notice names this event.
            "notice_event_id": notice_event_id,
        }
        await self.records.repository.add_history(
            history_row(
                licence,
                action=LicenceAction.PENALTY_NOTIFIED,
                from_status=licence.status,
                to_status=licence.status,
                reason=reason,
                actor=actor,
                at=clock.now(),
                details=details,
            )
        )
        return licence

    async def revoke_as_penalty(
        self, licence: Licence, *, body: PenaltyBody, actor: str
    ) -> Licence:
        """吊销许可证件 after the notice of rights (行政处罚法), followed by 注销 (Art. 70(4))."""
        notice = await self._notice(licence, IntendedPenalty.PENALTY_REVOCATION, allowed=LIVE)
        check_hearing(body, notice, today=clock.today(), suspension=False)
        await self._end(
            licence,
            to=LicenceStatus.PENALTY_REVOKED,
            action=LicenceAction.PENALTY_REVOKED,
            ground=CancellationGround.PENALTY_REVOKED,
            legal_basis=body.legal_basis,
            reason=body.reason,
            details=_penalty_details(body, notice),
            actor=actor,
            event_type=EventType.LICENCE_PENALTY_REVOKED,
        )
        return licence

    async def suspend(self, licence: Licence, *, body: PenaltyBody, actor: str) -> Licence:
        """暂扣许可证件 after the notice of rights (行政处罚法): not valid until reinstated."""
        today = clock.today()
        notice = await self._notice(
            licence, IntendedPenalty.SUSPENSION, allowed=(LicenceStatus.VALID,)
        )
        check_hearing(body, notice, today=today, suspension=True)
        details = _penalty_details(body, notice)
        if body.suspended_until is not None:
            details["suspended_until"] = body.suspended_until.isoformat()
        await self.records.transition(
            licence,
            allowed=[LicenceStatus.VALID],
            to=LicenceStatus.SUSPENDED,
            action=LicenceAction.SUSPENDED,
            reason=body.reason,
            actor=actor,
            extra={"act_on": today, "act_basis": body.legal_basis, "act_details": details},
            details={"legal_basis": body.legal_basis, **details},
        )
        await self.records.emit(
            licence,
            EventType.LICENCE_SUSPENDED,
            status=licence.status,
            reason=body.reason,
            act=act_fields(licence),
        )
        return licence

    async def _notice(
        self,
        licence: Licence,
        penalty: IntendedPenalty,
        *,
        allowed: Sequence[LicenceStatus],
    ) -> ServedNotice:
        """The recorded notice this penalty's decision rests on (行政处罚法 Art. 44): the holder
        must have been told this very penalty and its rights, and the hearing's deadline is the
        one that notice stated, whatever a request body says. A licence the penalty cannot
        apply to any more is refused as such first (the transition checks it again, locked)."""
        if licence.status not in allowed:
            raise LicenceNotActive(f"证照 {licence.licence_no} 当前状态不能作出该处罚")
        history = await self.records.repository.history(licence.licence_no)
        notice = served_notice(history, penalty, holder_uscc=licence.holder_uscc)
        if notice is None:
            raise PenaltyNoticeRequired(
                f"证照 {licence.licence_no} 未经登记送达拟{PENALTY_LABELS[penalty]}的行政处罚事先告知书"
                f"（POST /api/v1/licences/{licence.licence_no}/penalty-notices），不得作出该处罚决定"
            )
        return notice

    async def cancel(
        self,
        licence: Licence,
        *,
        ground: CancellationGround,
        reason: str,
        legal_basis: str | None,
        actor: str,
        extra: dict[str, Any] | None = None,
    ) -> Licence:
        """注销 on its own ground (Art. 70): the holder's application, termination, death, …"""
        today = clock.today()
        basis = legal_basis or "《中华人民共和国行政许可法》第七十条"
        details = {"ground": ground.value, **(extra or {})}
        await self.records.transition(
            licence,
            allowed=LIVE,
            to=LicenceStatus.CANCELLED,
            action=LicenceAction.CANCELLED,
            reason=f"{reason}（{CANCELLATION_GROUND_LABELS[ground]}）",
            actor=actor,
            extra={
                "act_on": today,
                "act_basis": basis,
                "act_details": details,
                "cancelled_on": today,
                "cancellation_ground": ground.value,
                **RENEWAL_CLEARED,
            },
            details={"legal_basis": basis, **details},
        )
        await self.records.emit(
            licence,
            EventType.LICENCE_CANCELLED,
            status=licence.status,
            reason=licence.status_reason,
            act=act_fields(licence),
        )
        return licence

    async def expire(self, licence: Licence, *, today: date, actor: str) -> None:
        """有效期届满未延续: expired, and 注销 follows (Art. 70(1)) on the timer's day."""
        late = licence.renewal_requested_on is not None and not licence.renewal_timely
        reason = f"有效期已于{licence.valid_until}届满" + (
            "；延续申请未在届满三十日前提出，不适用视为准予延续（《行政许可法》第五十条）"
            if late
            else ""
        )
        extra = {"cancelled_on": today, "cancellation_ground": CancellationGround.EXPIRED.value}
        await self.records.transition(
            licence,
            allowed=LIVE,
            to=LicenceStatus.EXPIRED,
            action=LicenceAction.EXPIRED,
            reason=reason,
            actor=actor,
            extra={**extra, **RENEWAL_CLEARED},
        )
        await self._record_cancellation(licence, ground=CancellationGround.EXPIRED, actor=actor)
        await self.records.emit(
            licence,
            EventType.LICENCE_EXPIRED,
            status=licence.status,
            reason=reason,
            act=act_fields(licence),
        )

    async def _end(
        self,
        licence: Licence,
        *,
        to: LicenceStatus,
        action: LicenceAction,
        ground: CancellationGround,
        legal_basis: str,
        reason: str,
        details: dict[str, Any],
        actor: str,
        event_type: EventType,
    ) -> None:
        """An act that ends the licence, and the 注销 that follows it (Art. 70(4))."""
        today = clock.today()
        await self.records.transition(
            licence,
            allowed=LIVE,
            to=to,
            action=action,
            reason=reason,
            actor=actor,
            extra={
                "act_on": today,
                "act_basis": legal_basis,
                "act_details": details,
                "cancelled_on": today,
                "cancellation_ground": ground.value,
                **RENEWAL_CLEARED,
            },
            details={"legal_basis": legal_basis, **details},
        )
        await self._record_cancellation(licence, ground=ground, actor=actor)
        await self.records.emit(
            licence, event_type, status=licence.status, reason=reason, act=act_fields(licence)
        )

    async def _record_cancellation(
        self, licence: Licence, *, ground: CancellationGround, actor: str
    ) -> None:
        """The 注销 entry that follows an act ending the licence (the status keeps the act)."""
        await self.records.repository.add_history(
            history_row(
                licence,
                action=LicenceAction.CANCELLED,
                from_status=licence.status,
                to_status=licence.status,
                reason=f"依法注销：{CANCELLATION_GROUND_LABELS[ground]}",
                actor=actor,
                at=clock.now(),
                details={"ground": ground.value},
            )
        )


def _penalty_details(body: PenaltyBody, notice: ServedNotice) -> dict[str, Any]:
    """The fields a penalty's record keeps (JSON); the notice's dates are the recorded ones."""
    details: dict[str, Any] = {
        "penalty_law": PENALTY_LAW,
        "penalty_decision_no": body.penalty_decision_no,
        "rights_notified_on": notice.notified_on.isoformat(),
        "hearing": body.hearing.value,
        "hearing_request_deadline": notice.hearing_request_deadline.isoformat(),
    }
    if notice.served_on is not None:
        details["notice_served_on"] = notice.served_on.isoformat()
    if body.hearing_held_on is not None:
        details["hearing_held_on"] = body.hearing_held_on.isoformat()
    return details
