"""An application's vocabulary, shared by every service that reads approval's events.

approval owns the lifecycle (``approval.lifecycle``: who may act, from which state, to which); the
words it is spelt in live here, so that license (pending permits) and notify (who is told) compare
against the same enums instead of copies of their strings. ``StrEnum``: on the wire and in the
databases a state is its plain string, as before.
"""

from __future__ import annotations

from enum import StrEnum


class ApplicationState(StrEnum):
    """Where an application stands."""

    SUBMITTED = "submitted"  # 已提交，待受理
    ACCEPTED = "accepted"  # 已受理
    REJECTED = "rejected"  # 不予受理
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 待补正
    IN_REVIEW = "in_review"  # 审查中
    PAUSED = "paused"  # 特别程序（不计时）
    APPROVED = "approved"  # 准予许可
    DENIED = "denied"  # 不予许可
    WITHDRAWN = "withdrawn"  # 已撤回
    FILED = "filed"  # 已备案


# Still before the authority: the applicant may withdraw, the clocks run.
OPEN_STATES = frozenset(
    {
        ApplicationState.SUBMITTED,
        ApplicationState.SUPPLEMENT_REQUESTED,
        ApplicationState.ACCEPTED,
        ApplicationState.IN_REVIEW,
        ApplicationState.PAUSED,
    }
)
# Settled: decided, refused, filed or withdrawn; nothing is pending any more.
SETTLED_STATES = frozenset(ApplicationState) - OPEN_STATES
# Ended without a grant: the case owes nothing more (no 容缺 material, no follow-up).
ENDED_UNGRANTED = frozenset(
    {ApplicationState.REJECTED, ApplicationState.DENIED, ApplicationState.WITHDRAWN}
)


# What the application asks for; the service guide's conditions differ per type. (The docstring
# is the OpenAPI description approval has always published.)
class BusinessType(StrEnum):
    """办理类型."""

    NEW = "new"  # 新办
    CHANGE = "change"  # 变更 (行政许可法 Art. 49)
    RENEW = "renew"  # 延续 (Art. 50)
    CANCEL = "cancel"  # 注销 (Art. 70)
