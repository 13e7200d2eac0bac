"""The opinion timer: a consulted department's opinion past its due date, settled once.

Under the item's ``escalation`` rule the overdue opinion is marked escalated and the jurisdiction's
government head is told (through notify's staff inbox) that the approval waits for their decision
(``POST .../opinions/{task_id}/override``); under ``deemed_agreement`` (逾期未答复视为同意) the
opinion is closed as deemed agreement from then on. Either way one entry goes to the case's
hash-chained trail (``escalate_opinion`` / ``deem_opinion``) with its event, in the transaction
that sets the task's marker, so a retry or a second replica finds nothing left to do.

Claims are row locks taken together on the tasks and their applications (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's single writer on SQLite): two replicas never take the same task,
nor two tasks of one case at once, and the application's ``row_version`` is bumped so that a
member of staff acting on the case at the same moment gets a 409 rather than a forked trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.lifecycle import RULES, Action
from approval.models import Application
from approval.repository import ApplicationRepository
from approval.tasks.chain import MissingOpinion, TaskKind, TaskStatus
from approval.tasks.models import ReviewTask
from approval.tasks.service import ChainKeeper, MoveRecorder, chain_for
from approval.transitions import SYSTEM_ACTOR
from govshared.applications import ApplicationState
from govshared.auth import Role
from govshared.events import EventType
from govshared.outbox import OutboxWriter
from govshared.sql import dialect_name

# The states in which a department may still answer (the lifecycle table's rule of the move).
_CHAIN_STATES = sorted(s.value for s in RULES[Action.GIVE_OPINION].from_states)


@dataclass(slots=True)
class OpinionRun:
    """What one run settled."""

    escalated: int = 0
    deemed: int = 0
    examined: int = 0


class OpinionTimers:
    """Settles the overdue opinions of the caller's transaction's claim."""

    def __init__(self, session: AsyncSession, *, outbox: OutboxWriter) -> None:
        self.session = session
        self.keeper = ChainKeeper(session, outbox)
        self.applications = ApplicationRepository(session)

    async def _claim(self, today: date, limit: int) -> list[tuple[ReviewTask, Application]]:
        query = (
            select(ReviewTask, Application)
            .join(Application, Application.id == ReviewTask.application_id)
            .where(
                ReviewTask.kind == TaskKind.OPINION.value,
                ReviewTask.status == TaskStatus.OPEN.value,
                ReviewTask.due_on < today,
                ReviewTask.overridden_by.is_(None),
                ReviewTask.escalated_at.is_(None),
                Application.state.in_(_CHAIN_STATES),
            )
            .order_by(ReviewTask.due_on, ReviewTask.application_id, ReviewTask.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        if dialect_name(self.session) == "postgresql":
            # Both rows: a case's overdue opinions go to one replica together.
            query = query.with_for_update(skip_locked=True)
        rows = (await self.session.execute(query)).all()
        return [(row[0], row[1]) for row in rows]

    async def fire(self, *, today: date, now: datetime, limit: int) -> OpinionRun:
        """Claim up to ``limit`` overdue opinions and settle each by its item's rule."""
        run = OpinionRun()
        claimed = await self._claim(today, limit)
        run.examined = len(claimed)
        by_case: dict[uuid.UUID, list[ReviewTask]] = {}
        cases: dict[uuid.UUID, Application] = {}
        for task, application in claimed:
            by_case.setdefault(application.id, []).append(task)
            cases[application.id] = application
        for application_id, tasks in by_case.items():
            escalated, deemed = await self._settle(cases[application_id], tasks, today, now)
            run.escalated += escalated
            run.deemed += deemed
        return run

    async def _settle(
        self, application: Application, tasks: Sequence[ReviewTask], today: date, now: datetime
    ) -> tuple[int, int]:
        chain = await chain_for(self.session, application)
        if chain is None:
            return 0, 0
        if not await self.applications.update_state(
            application.id, expected_version=application.row_version, values={"updated_at": now}
        ):
            # Someone acted on the case in between: roll this claim back with the transaction.
            raise RuntimeError(f"application {application.id} changed while settling opinions")
        seq, last_hash = await self.applications.chain_end(application.id)
        state = ApplicationState(application.state)
        recorder = MoveRecorder(self.keeper, application, state, seq + 1, last_hash, now)
        escalate = chain.missing_opinion is MissingOpinion.ESCALATION
        for task in tasks:
            assert task.due_on is not None
            details: dict[str, Any] = {
                "task_id": str(task.id),
                "department": task.department,
                "department_name": task.name,
                "opinion_due_on": task.due_on.isoformat(),
                "rule": chain.missing_opinion.value,
            }
            if escalate:
                await self.keeper.tasks.change(task.id, {"escalated_at": now})
                # notify tells the jurisdiction's government head (notify/rules.py).
                details["role"] = Role.GOVERNMENT_HEAD.value
                await recorder.record(
                    "escalate_opinion",
                    EventType.APPLICATION_OPINION_ESCALATED,
                    details,
                    actor=SYSTEM_ACTOR,
                    due_on=task.due_on,
                )
            else:
                # 逾期未答复视为同意: settled now, so the decision finds it given (and does not
                # deem it a second time).
                await self.keeper.tasks.change(
                    task.id,
                    {
                        "status": TaskStatus.DONE.value,
                        "outcome": "deemed_agreement",
                        "completed_at": now,
                    },
                )
                await recorder.record(
                    "deem_opinion",
                    EventType.APPLICATION_OPINION_DEEMED,
                    details,
                    actor=SYSTEM_ACTOR,
                    due_on=task.due_on,
                )
        count = len(tasks)
        return (count, 0) if escalate else (0, count)
