"""Rules: which event notifies whom, on which channels, and how critical it is (docs/architecture.md, "Notifications").

Statutory notices (acceptance, refusal, 补正, pause, extension, decision, licence issued; the
notice of an intended penalty and the holder's right to a hearing; each act that suspends or ends a
licence: 暂扣, 撤销, 撤回, 吊销, 注销 and expiry; an order to put a commitment's
conditions right; and the service of a sealed notice, decision or licence certificate) are critical:
they ignore preferences, quiet hours and rate limits, and their delivery is reported back as proof
of service.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_

from govshared import jurisdictions
from govshared.applications import ApplicationState
from govshared.auth import Role
from govshared.event_details import TaskNotice
from govshared.events import (
    ApplicationEventData,
    ApplicationParty,
    BundleEventData,
    CloudEvent,
    DocumentEventData,
    EventType,
    LicenceEventData,
)
from notify.documents import DocumentLinks
from notify.models import Channel, RecipientKind

CRITICAL_EVENT_TYPES: frozenset[str] = frozenset(
    str(t)
    for t in (
        EventType.APPLICATION_ACCEPTED,
        EventType.APPLICATION_DEEMED_ACCEPTED,
        EventType.APPLICATION_REJECTED,
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
        EventType.APPLICATION_PAUSED,
        EventType.APPLICATION_EXTENDED,
        EventType.APPLICATION_APPROVED,
        EventType.APPLICATION_DENIED,
        EventType.DOCUMENT_ISSUED,
        EventType.LICENCE_ISSUED,
        EventType.LICENCE_PENALTY_NOTIFIED,
        EventType.LICENCE_SUSPENDED,
        EventType.LICENCE_REVOKED,
        EventType.LICENCE_WITHDRAWN,
        EventType.LICENCE_PENALTY_REVOKED,
        EventType.LICENCE_CANCELLED,
        EventType.LICENCE_EXPIRED,
        EventType.LICENCE_RECTIFICATION_ORDERED,
        # 双随机 results may order 限期整改: served like the other orders.
        EventType.LICENCE_INSPECTED,
        # A missed 限期整改: a serious credit record and a proposed act.
        EventType.LICENCE_RECTIFICATION_MISSED,
    )
)
_NO_LINKS = DocumentLinks()

ENTERPRISE_CHANNELS = (Channel.INBOX, Channel.EMAIL, Channel.SMS, Channel.WEBHOOK)

# Internal steps and clock alarms concern staff only.
_NOT_FOR_APPLICANT = frozenset(
    str(t)
    for t in (
        EventType.APPLICATION_REVIEWED,
        EventType.APPLICATION_CLOCK_WARNING,
        EventType.APPLICATION_CLOCK_OVERDUE,
        EventType.APPLICATION_TASK_OPENED,
        EventType.APPLICATION_TASK_CLAIMED,
        EventType.APPLICATION_TASK_RETURNED,
        EventType.APPLICATION_TASK_TRANSFERRED,
        EventType.APPLICATION_OPINION_REQUESTED,
        EventType.APPLICATION_OPINION_GIVEN,
        EventType.APPLICATION_OPINION_OVERRIDDEN,
        EventType.APPLICATION_OPINION_ESCALATED,
        EventType.APPLICATION_OPINION_DEEMED,
    )
)
# A review chain's new work (a new task, a return, a transfer, a request for a department's
# opinion) goes to whom approval names in the event: the assignee and their delegates in force,
# else the consulted department, else the staff of the step's role in the jurisdiction.
_TASK_NOTICES = frozenset(
    str(t)
    for t in (
        EventType.APPLICATION_TASK_OPENED,
        EventType.APPLICATION_TASK_RETURNED,
        EventType.APPLICATION_TASK_TRANSFERRED,
        EventType.APPLICATION_OPINION_REQUESTED,
    )
)

# Which staff role works an application in a given open state (clock alarms go to them). A case
# reaches in_review only through a recorded review (approval's lifecycle), so what it waits for is
# the approver's decision (行政许可法 Art. 42); an accepted or paused case waits for its reviewers.
ROLE_BY_STATE: dict[ApplicationState, Role] = {
    ApplicationState.SUBMITTED: Role.ACCEPTOR,
    ApplicationState.SUPPLEMENT_REQUESTED: Role.ACCEPTOR,
    ApplicationState.ACCEPTED: Role.REVIEWER,
    ApplicationState.IN_REVIEW: Role.APPROVER,
    ApplicationState.PAUSED: Role.REVIEWER,
}


def role_waited_for(state: str) -> Role:
    """The staff role a case in ``state`` waits for (``ROLE_BY_STATE``); the reviewers for a state
    this version does not know (a newer approval's, during a roll-out), rather than no alarm."""
    try:
        return ROLE_BY_STATE.get(ApplicationState(state), Role.REVIEWER)
    except ValueError:
        return Role.REVIEWER


def jurisdiction_error(data: BaseModel) -> str | None:
    """Why an event's jurisdiction cannot scope its notices (not a 行政区划 code), else None.

    Staff read and replay notices by the jurisdiction they cover: a notice under anything else
    would reach none of them, and on PostgreSQL a longer value failed the whole batch it came in.
    """
    jurisdiction = getattr(data, "jurisdiction", None)
    if jurisdiction is None and not isinstance(data, ApplicationParty):
        return None
    if jurisdictions.is_valid(jurisdiction):
        return None
    return "jurisdiction: 须为 6、9 或 12 位的有效行政区划代码"


@dataclass(frozen=True, slots=True)
class Audience:
    """One recipient of an event with the channels it may be reached on."""

    kind: RecipientKind
    recipient: str
    channels: tuple[Channel, ...]
    template_slot: str | None = None  # None: the channel's own template


@dataclass(frozen=True, slots=True)
class Plan:
    """What an event turns into."""

    critical: bool
    jurisdiction: str | None
    audiences: list[Audience]
    context: dict[str, Any]


def is_critical(event_type: str) -> bool:
    """True for statutory notices."""
    return event_type in CRITICAL_EVENT_TYPES


def serves_document(data: BaseModel) -> bool:
    """True when the event serves a sealed document (a changed or renewed licence's certificate)."""
    return isinstance(data, LicenceEventData) and data.document is not None


def staff_recipient(jurisdiction: str, role: Role | str) -> str:
    """The recipient key of a jurisdiction's staff in one role."""
    return f"staff:{jurisdiction}:{role}"


@dataclass(frozen=True, slots=True)
class Readers:
    """Whose inbox a caller reads: exact recipient keys, and (staff) the keys of their role in
    every jurisdiction under theirs: a city's acceptors read what went to a district's."""

    keys: tuple[str, ...]
    staff_role: str | None = None
    staff_jurisdiction: str | None = None

    def clause(self, column: Any) -> ColumnElement[bool]:
        """SQL: the recipient column names one of these readers."""
        exact: ColumnElement[bool] = column.in_(self.keys)
        if self.staff_role is None or self.staff_jurisdiction is None:
            return exact
        # Digits and a role name only (the jurisdiction is validated, the role an enum): no
        # character of a claim can act as a LIKE wildcard.
        prefix = jurisdictions.scope_prefix(self.staff_jurisdiction)
        role = Role(self.staff_role).value
        # The LIKE alone is no index condition: PostgreSQL serves a LIKE prefix from a btree only
        # under the C collation (or text_pattern_ops), SQLite only with case-sensitive LIKE; both
        # read the whole table for every staff inbox page, count and stream poll. The range
        # [staff:<prefix>, staff:<prefix + 1>) is one any btree on recipient serves, on both
        # databases and in any collation; the LIKE stays as the exact test within it (the key's
        # form of ``jurisdictions.under_prefix``).
        low, high = f"staff:{prefix}", f"staff:{jurisdictions.next_prefix(prefix)}"
        under = and_(column >= low, column < high, column.like(f"staff:{prefix}%:{role}"))
        return or_(exact, under)

    def reads(self, recipient: str) -> bool:
        """The same test in Python (the stream, tests)."""
        if recipient in self.keys:
            return True
        if self.staff_role is None or self.staff_jurisdiction is None:
            return False
        kind, _, rest = recipient.partition(":")
        jurisdiction, _, role = rest.partition(":")
        return (
            kind == "staff"
            and role == self.staff_role
            and jurisdictions.covers(self.staff_jurisdiction, jurisdiction)
        )


def department_recipient(department: str) -> str:
    """The recipient key of a department's staff (the ``department`` claim of their tokens)."""
    return f"department:{department}"


def task_recipients(data: ApplicationEventData[Any]) -> list[str]:
    """Who is told of a review chain's new work (approval names them in the event's details)."""
    details = data.details
    if not isinstance(details, TaskNotice):
        return []
    if details.assignee is not None:
        return [user_recipient(s) for s in [details.assignee, *(details.delegates or [])]]
    if details.department is not None:
        return [department_recipient(details.department)]
    if details.role is not None and details.role in Role.__members__.values():
        return [staff_recipient(data.jurisdiction, details.role)]
    return []


def user_recipient(subject: str) -> str:
    """The recipient key of a named user (the ``sub`` of their token)."""
    return f"user:{subject}"


def _chinese_date(value: Any) -> Any:
    """An ISO date as people write it (2026年12月25日); anything else as it is (a direct notice's
    free-form data may hold any text under a date's name)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    return value


def template_context(
    event: CloudEvent, data: BaseModel | dict[str, Any], links: DocumentLinks | None = None
) -> dict[str, Any]:
    """The variables a template sees: the event's data (dates in Chinese), its envelope, and the
    links and file name of a sealed document it carries."""
    values = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
    if "licence_type" in values:
        # People read the licence type's name (every template, built-in or published, says
        # {{ licence_type }}); the code stays available as licence_type_code. An event from before
        # license sent the name falls back to its certificate's title, else to "许可证".
        document = values.get("document")
        title = document.get("title") if isinstance(document, dict) else None
        values["licence_type_code"] = values["licence_type"]
        values["licence_type"] = values.pop("licence_type_name", None) or title or "许可证"
    for key in (
        "due_on",
        "valid_until",
        "act_on",
        "cancelled_on",
        "rights_notified_on",
        "suspended_until",
        "rectify_by",
        "hearing_request_deadline",
        "inspection_due_on",
    ):
        if key in values:
            values[key] = _chinese_date(values[key])
    values.update(event_id=event.id, event_type=event.type, event_subject=event.subject)
    values.update((links or _NO_LINKS).context(event.source, values.get("document")))
    return values


def plan_event(
    event: CloudEvent,
    data: BaseModel,
    named: Mapping[str, Sequence[str]] | None = None,
    links: DocumentLinks | None = None,
) -> Plan:
    """Apply the rules to one validated event; ``named`` adds named users per event type pattern,
    ``links`` makes a sealed document's links."""
    context = template_context(event, data, links)
    critical = is_critical(event.type) or serves_document(data)
    audiences: list[Audience] = []
    jurisdiction: str | None = None
    if isinstance(data, ApplicationEventData):
        jurisdiction = data.jurisdiction
        if event.type not in _NOT_FOR_APPLICANT:
            audiences.append(
                Audience(RecipientKind.ENTERPRISE, str(data.applicant_uscc), ENTERPRISE_CHANNELS)
            )
        roles: list[Role] = []
        if event.type in (EventType.APPLICATION_SUBMITTED, EventType.APPLICATION_SUPPLEMENTED):
            roles.append(Role.ACCEPTOR)
        elif event.type in (
            EventType.APPLICATION_CLOCK_WARNING,
            EventType.APPLICATION_CLOCK_OVERDUE,
        ):
            roles.append(role_waited_for(data.state))
            if event.type == EventType.APPLICATION_CLOCK_OVERDUE:
                roles.append(Role.HEAD)
        elif event.type == EventType.APPLICATION_OPINION_ESCALATED:
            # An overdue opinion under the escalation rule: the approval waits for the decision
            # of the head of the people's government at that level (行政许可法第二十六条第二款).
            roles.append(Role.GOVERNMENT_HEAD)
        audiences.extend(
            Audience(
                RecipientKind.STAFF,
                staff_recipient(data.jurisdiction, role),
                (Channel.INBOX,),
                template_slot="staff_inbox",
            )
            for role in roles
        )
        if event.type in _TASK_NOTICES:
            audiences.extend(
                Audience(
                    RecipientKind.USER if key.startswith("user:") else RecipientKind.STAFF,
                    key,
                    (Channel.INBOX,),
                    template_slot="staff_inbox",
                )
                for key in task_recipients(data)
            )
    elif isinstance(data, DocumentEventData):
        jurisdiction = data.jurisdiction
        audiences.append(
            Audience(RecipientKind.ENTERPRISE, str(data.applicant_uscc), ENTERPRISE_CHANNELS)
        )
    elif isinstance(data, BundleEventData):
        # 一件事: one combined notice to the applicant once every item is decided.
        audiences.append(
            Audience(RecipientKind.ENTERPRISE, str(data.applicant_uscc), ENTERPRISE_CHANNELS)
        )
    elif isinstance(data, LicenceEventData):
        audiences.append(
            Audience(RecipientKind.ENTERPRISE, str(data.holder_uscc), ENTERPRISE_CHANNELS)
        )
        if event.type == EventType.LICENCE_RECTIFICATION_MISSED and data.jurisdiction:
            # Those who carry out the proposed act (暂扣, 吊销, 撤销) in the licence's area.
            jurisdiction = data.jurisdiction
            audiences.extend(
                Audience(
                    RecipientKind.STAFF,
                    staff_recipient(data.jurisdiction, role),
                    (Channel.INBOX,),
                    template_slot="staff_inbox",
                )
                for role in (Role.APPROVER, Role.HEAD)
            )
    subjects = sorted(
        {
            subject
            for pattern, users in (named or {}).items()
            if fnmatch.fnmatchcase(event.type, pattern)
            for subject in users
        }
    )
    audiences.extend(
        Audience(
            RecipientKind.USER,
            user_recipient(subject),
            (Channel.INBOX,),
            template_slot="staff_inbox",
        )
        for subject in subjects
    )
    return Plan(critical=critical, jurisdiction=jurisdiction, audiences=audiences, context=context)


def webhook_matches(patterns: list[str], event_type: str) -> bool:
    """True when a subscription's event type patterns cover the event (empty: every event)."""
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)
