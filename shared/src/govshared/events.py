"""CloudEvents 1.0 envelope and the event schemas that are the contract between services.

Every event that leaves a service goes through its outbox as one of these envelopes (structured JSON
mode). Relays may post several at once as a JSON array (``application/cloudevents-batch+json``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from govshared import event_details as d
from govshared.uscc import USCC

CLOUDEVENTS_JSON = "application/cloudevents+json"
CLOUDEVENTS_BATCH_JSON = "application/cloudevents-batch+json"


class EventType(StrEnum):
    """Every event type the suite emits; the ``.v1`` suffix versions the data schema."""

    APPLICATION_SUBMITTED = "cn.gov.approval.application.submitted.v1"
    APPLICATION_ACCEPTED = "cn.gov.approval.application.accepted.v1"
    APPLICATION_DEEMED_ACCEPTED = "cn.gov.approval.application.deemed_accepted.v1"
    APPLICATION_REJECTED = "cn.gov.approval.application.rejected.v1"
    APPLICATION_SUPPLEMENT_REQUESTED = "cn.gov.approval.application.supplement_requested.v1"
    APPLICATION_SUPPLEMENTED = "cn.gov.approval.application.supplemented.v1"
    APPLICATION_REVIEWED = "cn.gov.approval.application.reviewed.v1"
    APPLICATION_PAUSED = "cn.gov.approval.application.paused.v1"
    APPLICATION_RESUMED = "cn.gov.approval.application.resumed.v1"
    APPLICATION_EXTENDED = "cn.gov.approval.application.extended.v1"
    APPLICATION_APPROVED = "cn.gov.approval.application.approved.v1"
    APPLICATION_DENIED = "cn.gov.approval.application.denied.v1"
    APPLICATION_WITHDRAWN = "cn.gov.approval.application.withdrawn.v1"
    APPLICATION_FILED = "cn.gov.approval.application.filed.v1"
    APPLICATION_CLOCK_WARNING = "cn.gov.approval.application.clock_warning.v1"
    APPLICATION_CLOCK_OVERDUE = "cn.gov.approval.application.clock_overdue.v1"
    # Review chains and 并联审批 (approval/tasks): staff work, never the applicant's.
    APPLICATION_TASK_OPENED = "cn.gov.approval.application.task_opened.v1"
    APPLICATION_TASK_CLAIMED = "cn.gov.approval.application.task_claimed.v1"
    APPLICATION_TASK_RETURNED = "cn.gov.approval.application.task_returned.v1"  # 退回
    APPLICATION_TASK_TRANSFERRED = "cn.gov.approval.application.task_transferred.v1"  # 转办
    APPLICATION_OPINION_REQUESTED = "cn.gov.approval.application.opinion_requested.v1"  # 征求意见
    APPLICATION_OPINION_GIVEN = "cn.gov.approval.application.opinion_given.v1"  # 会签意见
    APPLICATION_OPINION_OVERRIDDEN = "cn.gov.approval.application.opinion_overridden.v1"
    # An opinion past its due date: escalated to the government head, or deemed agreement.
    APPLICATION_OPINION_ESCALATED = "cn.gov.approval.application.opinion_escalated.v1"
    APPLICATION_OPINION_DEEMED = "cn.gov.approval.application.opinion_deemed.v1"
    DOCUMENT_ISSUED = "cn.gov.approval.document.issued.v1"
    # 一件事一次办: every item of a bundle application is decided; one combined notice.
    BUNDLE_DECIDED = "cn.gov.approval.bundle.decided.v1"
    LICENCE_ISSUED = "cn.gov.license.licence.issued.v1"
    LICENCE_CHANGED = "cn.gov.license.licence.changed.v1"
    LICENCE_RENEWED = "cn.gov.license.licence.renewed.v1"
    LICENCE_SUSPENDED = "cn.gov.license.licence.suspended.v1"  # 暂扣 (行政处罚法)
    LICENCE_REVOKED = "cn.gov.license.licence.revoked.v1"  # 撤销 (行政许可法 Art. 69)
    LICENCE_WITHDRAWN = "cn.gov.license.licence.withdrawn.v1"  # 撤回 (Art. 8)
    LICENCE_PENALTY_REVOKED = "cn.gov.license.licence.penalty_revoked.v1"  # 吊销 (行政处罚法)
    LICENCE_CANCELLED = "cn.gov.license.licence.cancelled.v1"  # 注销 (Art. 70)
    # 行政处罚事先告知: the intended 吊销/暂扣 and the holder's rights, before the decision.
    LICENCE_PENALTY_NOTIFIED = "cn.gov.license.licence.penalty_notified.v1"
    LICENCE_EXPIRED = "cn.gov.license.licence.expired.v1"
    LICENCE_RECTIFICATION_ORDERED = "cn.gov.license.licence.rectification_ordered.v1"  # 责令整改
    LICENCE_RENEWAL_DUE = "cn.gov.license.licence.renewal_due.v1"
    # 双随机、一公开: the holder is told it was drawn for inspection, then the result.
    LICENCE_INSPECTION_SCHEDULED = "cn.gov.license.licence.inspection_scheduled.v1"
    LICENCE_INSPECTED = "cn.gov.license.licence.inspected.v1"
    # 限期整改 missed: the holder is told of its credit record and the act proposed, and the
    # jurisdiction's staff of the proposal they are to carry out.
    LICENCE_RECTIFICATION_MISSED = "cn.gov.license.licence.rectification_missed.v1"
    NOTIFICATION_DELIVERED = "cn.gov.notify.notification.delivered.v1"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode."""

    model_config = ConfigDict(extra="allow")

    specversion: str = Field(default="1.0", pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=200, examples=["/services/approval"])
    type: str = Field(min_length=1, max_length=200)
    subject: str | None = Field(default=None, max_length=200)
    time: datetime
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)


class ReformMode(StrEnum):
    """证照分离 reform modes (docs/architecture.md, "Reform modes")."""

    CANCELLED = "cancel_approval"  # 直接取消审批
    FILING = "approval_to_filing"  # 审批改为备案
    COMMITMENT = "notification_commitment"  # 实行告知承诺
    OPTIMIZED = "optimize_service"  # 优化审批服务


REFORM_MODE_LABELS: dict[ReformMode, str] = {
    ReformMode.CANCELLED: "直接取消审批",
    ReformMode.FILING: "审批改为备案",
    ReformMode.COMMITMENT: "实行告知承诺",
    ReformMode.OPTIMIZED: "优化审批服务",
}


class ApplicationParty(BaseModel):
    """What every approval event says about the application it concerns."""

    application_id: uuid.UUID
    application_no: str
    item_code: str
    item_name: str
    applicant_uscc: USCC
    applicant_name: str
    jurisdiction: str


DetailsT = TypeVar("DetailsT")


class ApplicationEventData(ApplicationParty, Generic[DetailsT]):
    """The data of every ``cn.gov.approval.application.*`` event; ``details`` is typed per event
    type (``EVENT_DATA``: ``ApplicationEventData[OpinionRequestedDetails]`` and so on).

    Producers build it unparametrised, ``details`` a plain dict (not validated again on the hot
    path); consumers parse it with the event type's model (``parse_data``).
    """

    state: str
    reform_mode: ReformMode | None = None
    occurred_at: datetime
    actor_role: str | None = None
    reason: str | None = None
    due_on: date | None = None
    details: DetailsT = Field(default_factory=dict, validate_default=True)


class SealedDocumentRef(BaseModel):
    """A sealed PDF that an event is about: where its holder downloads it and anyone verifies it.

    ``download_path`` is a path on the emitting service (the event's ``source``): the holder reads it
    with their own token, and notify with its service token to attach the file to a message.
    """

    document_id: uuid.UUID
    kind: str = Field(examples=["acceptance", "licence"])
    title: str = Field(examples=["受理通知书"])
    number: str
    issued_on: date
    pdf_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    pdf_size: int = Field(ge=1)
    download_path: str = Field(pattern=r"^/api/v1/")
    verify_url: str


class DocumentEventData(ApplicationParty):
    """The data of ``cn.gov.approval.document.issued``: a notice or decision has been sealed.

    Sealing happens after the transition that decided the document (by approval's worker, from a
    register row written in the transition's transaction), so it is a separate event.
    """

    occurred_at: datetime
    document: SealedDocumentRef


class BundleItemResult(BaseModel):
    """One item of a decided bundle application."""

    application_id: uuid.UUID
    application_no: str
    item_code: str
    item_name: str
    state: str
    state_label: str
    reason: str | None = None


class BundleEventData(BaseModel):
    """The data of ``cn.gov.approval.bundle.decided``: the combined result of a bundle application."""

    bundle_application_id: uuid.UUID
    bundle_code: str
    bundle_name: str
    applicant_uscc: USCC
    applicant_name: str
    outcome: str = Field(examples=["approved", "partially_approved", "refused"])
    summary: str
    items: list[BundleItemResult]
    occurred_at: datetime


class LicenceEventData(BaseModel):
    """The data of every ``cn.gov.license.licence.*`` event."""

    licence_id: uuid.UUID
    licence_no: str
    licence_type: str
    # What people read (notify's texts): the type's Chinese name, never the code above.
    licence_type_name: str | None = Field(default=None, examples=["食盐定点批发许可证"])
    holder_name: str
    holder_uscc: USCC
    status: str
    valid_until: date | None = None
    application_id: uuid.UUID | None = None
    reason: str | None = None
    occurred_at: datetime
    document: SealedDocumentRef | None = None  # the sealed certificate PDF of this version
    # The act that ended or suspended the licence (撤销, 撤回, 吊销, 暂扣, 注销) and what the law
    # requires its notice to say; None for the other events.
    act_on: date | None = None
    legal_basis: str | None = None
    compensation_note: str | None = None  # 撤回 (Art. 8): how the holder is compensated
    penalty_decision_no: str | None = None  # 吊销/暂扣: the 行政处罚决定书 cited
    rights_notified_on: date | None = None  # 吊销/暂扣: 事先告知 of the right to a hearing
    hearing: str | None = None  # held | waived | not_requested
    intended_penalty: str | None = None  # penalty_notified: penalty_revocation | suspension
    hearing_request_deadline: date | None = None  # penalty_notified: last day to ask a hearing
    suspended_until: date | None = None
    cancelled_on: date | None = None  # the 注销 that follows (Art. 70)
    cancellation_ground: str | None = None
    rectify_by: date | None = None  # 告知承诺 follow-up or inspection: the deadline to put it right
    inspection_id: uuid.UUID | None = None  # 双随机 inspection events
    inspection_due_on: date | None = None  # inspection_scheduled: the day it is due by
    inspection_outcome: str | None = None  # inspected: compliant | non_compliant | …
    # The licence's 行政区划 code, for notices to its staff (rectification_missed).
    jurisdiction: str | None = Field(default=None, pattern=r"^\d{6}$")


class NotificationDeliveredData(BaseModel):
    """Proof of service of a notice: reported back to the service whose event caused it."""

    notification_id: uuid.UUID
    cause_event_id: str
    cause_event_type: str
    subject: str | None
    channel: str
    recipient: str
    delivered_at: datetime


APPLICATION_EVENT_PREFIX = "cn.gov.approval.application."
APPLICATION_DETAILS: dict[EventType, type[d.ApplicationDetails]] = {
    EventType.APPLICATION_SUBMITTED: d.SubmittedDetails,
    EventType.APPLICATION_ACCEPTED: d.AcceptedDetails,
    EventType.APPLICATION_DEEMED_ACCEPTED: d.DeemedAcceptedDetails,
    EventType.APPLICATION_REJECTED: d.RejectedDetails,
    EventType.APPLICATION_SUPPLEMENT_REQUESTED: d.SupplementRequestedDetails,
    EventType.APPLICATION_SUPPLEMENTED: d.SupplementedDetails,
    EventType.APPLICATION_REVIEWED: d.ReviewedDetails,
    EventType.APPLICATION_PAUSED: d.PausedDetails,
    EventType.APPLICATION_RESUMED: d.ResumedDetails,
    EventType.APPLICATION_EXTENDED: d.ExtendedDetails,
    EventType.APPLICATION_APPROVED: d.ApprovedDetails,
    EventType.APPLICATION_DENIED: d.DeniedDetails,
    EventType.APPLICATION_WITHDRAWN: d.WithdrawnDetails,
    EventType.APPLICATION_FILED: d.FiledDetails,
    EventType.APPLICATION_CLOCK_WARNING: d.ClockDetails,
    EventType.APPLICATION_CLOCK_OVERDUE: d.ClockDetails,
    EventType.APPLICATION_TASK_OPENED: d.TaskOpenedDetails,
    EventType.APPLICATION_TASK_CLAIMED: d.TaskClaimedDetails,
    EventType.APPLICATION_TASK_RETURNED: d.TaskReturnedDetails,
    EventType.APPLICATION_TASK_TRANSFERRED: d.TaskTransferredDetails,
    EventType.APPLICATION_OPINION_REQUESTED: d.OpinionRequestedDetails,
    EventType.APPLICATION_OPINION_GIVEN: d.OpinionGivenDetails,
    EventType.APPLICATION_OPINION_OVERRIDDEN: d.OpinionOverriddenDetails,
    EventType.APPLICATION_OPINION_ESCALATED: d.OpinionLateDetails,
    EventType.APPLICATION_OPINION_DEEMED: d.OpinionLateDetails,
}

# Every event type's data model: the contract between services (snapshots of their JSON schemas in
# shared/tests/contract/, docs/architecture.md "Event contracts"). Consumers parse with it
# (``parse_data``); producers build the same shapes (checked in the tests, ``govshared.testing``).
EVENT_DATA: dict[EventType, type[BaseModel]] = {
    **{
        t: ApplicationEventData[details]  # type: ignore[valid-type]
        for t, details in APPLICATION_DETAILS.items()
    },
    EventType.DOCUMENT_ISSUED: DocumentEventData,
    EventType.BUNDLE_DECIDED: BundleEventData,
    **{t: LicenceEventData for t in EventType if t.value.startswith("cn.gov.license.")},
    EventType.NOTIFICATION_DELIVERED: NotificationDeliveredData,
}
# The same, keyed by the type's string (what an envelope carries).
EVENT_DATA_SCHEMAS: dict[str, type[BaseModel]] = {t.value: m for t, m in EVENT_DATA.items()}


def make_event(
    *, type: EventType | str, source: str, subject: str | None, data: BaseModel
) -> CloudEvent:
    """Wrap ``data`` in a new envelope with a fresh id and the current time."""
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=str(type),
        subject=subject,
        time=datetime.now(UTC),
        data=data.model_dump(mode="json"),
    )


def parse_data(event: CloudEvent) -> BaseModel:
    """Validate an event's data against the model of its type (KeyError for an unknown type);
    keys the model does not know are kept (a newer producer), never an error."""
    return EVENT_DATA_SCHEMAS[event.type].model_validate(event.data)


def parse_application_data(event: CloudEvent) -> ApplicationEventData[d.ApplicationDetails]:
    """An application event's data with its type's details; a ``cn.gov.approval.application.*``
    type this version does not know (a newer approval's) with the details every type shares.
    KeyError for an event that is not an application event."""
    model = EVENT_DATA_SCHEMAS.get(event.type)
    if model is None and event.type.startswith(APPLICATION_EVENT_PREFIX):
        model = ApplicationEventData[d.ApplicationDetails]
    if model is None or not issubclass(model, ApplicationEventData):
        raise KeyError(event.type)
    return cast(ApplicationEventData[d.ApplicationDetails], model.model_validate(event.data))
