"""Property tests: no sequence of moves through a review chain skips a required step or opinion.

Hypothesis draws chains (one to four review steps, up to three consulted departments, either rule
for a missing opinion) and sequences of moves (complete the current step, return it to an earlier
one, a department's opinion, the government head's override, days passing, a decision attempt).
The moves change the tasks as the service does (approval/tasks/service.py, handlers.py) and ask the
same rules (approval/tasks/chain.py) whether they are allowed; every decision the rules let through
is then checked against the log of what happened, by rules written here independently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from approval.tasks.chain import (
    MissingOpinion,
    ReviewChain,
    StepKind,
    TaskFacts,
    TaskKind,
    TaskStatus,
    current_step,
    decision_check,
    return_targets,
)

START = date(2021, 9, 17)


def make_chain(reviews: int, departments: int, rule: MissingOpinion) -> ReviewChain:
    steps = [{"key": "acceptance", "name": "受理", "kind": "accept", "role": "acceptor"}]
    steps += [
        {"key": f"review_{i}", "name": f"审查{i}", "kind": "review", "role": "reviewer"}
        for i in range(1, reviews + 1)
    ]
    steps.append({"key": "decision", "name": "审批", "kind": "decide", "role": "approver"})
    return ReviewChain.model_validate(
        {
            "steps": steps,
            "consultations": [
                {"department": f"D{i}", "name": f"部门{i}", "working_days": 5 + 3 * i}
                for i in range(departments)
            ],
            "missing_opinion": rule.value,
        }
    )


@dataclass
class Case:
    """A case in memory, moved as the service moves it."""

    chain: ReviewChain
    tasks: list[TaskFacts] = field(default_factory=list)
    today: date = START
    log: list[tuple[str, int]] = field(default_factory=list)  # (move, step or department index)
    decided: str | None = None

    def open_step(self, index: int) -> None:
        self.tasks.append(TaskFacts(uuid.uuid4(), TaskKind.STEP, index, TaskStatus.OPEN))

    def accept(self) -> None:
        self.tasks.append(TaskFacts(uuid.uuid4(), TaskKind.STEP, 0, TaskStatus.DONE))
        self.open_step(1)
        for i, consultation in enumerate(self.chain.consultations):
            self.tasks.append(
                TaskFacts(
                    uuid.uuid4(),
                    TaskKind.OPINION,
                    -1,
                    TaskStatus.OPEN,
                    department=consultation.department,
                    due_on=START + timedelta(days=consultation.working_days),
                    completed_by=str(i),
                )
            )

    def set(self, task: TaskFacts, **changes: object) -> None:
        self.tasks[self.tasks.index(task)] = replace(task, **changes)  # type: ignore[arg-type]

    def opinion(self, i: int) -> TaskFacts | None:
        return next(
            (t for t in self.tasks if t.kind is TaskKind.OPINION and t.completed_by == str(i)),
            None,
        )

    # -- moves ----------------------------------------------------------------------------------

    def complete(self, approving: bool) -> None:
        step = current_step(self.tasks)
        if step is None:
            return
        kind = self.chain.steps[step.step_index].kind
        if kind is StepKind.REVIEW:
            self.set(step, status=TaskStatus.DONE)
            self.log.append(("complete", step.step_index))
            self.open_step(step.step_index + 1)
            return
        check = decision_check(self.chain, self.tasks, self.today)
        if check.blocks(approving=approving):
            return
        self.set(step, status=TaskStatus.DONE)
        self.decided = "approve" if approving else "deny"
        self.log.append((self.decided, step.step_index))

    def return_to(self, pick: int) -> None:
        step = current_step(self.tasks)
        if step is None:
            return
        targets = return_targets(self.chain, step)
        if not targets:
            return
        target = targets[pick % len(targets)]
        self.set(step, status=TaskStatus.RETURNED)
        self.log.append(("return", target))
        self.open_step(target)

    def give(self, i: int, outcome: str) -> None:
        task = self.opinion(i)
        if task is None or task.status is not TaskStatus.OPEN:
            return
        self.set(task, status=TaskStatus.DONE, outcome=outcome)
        self.log.append((f"opinion:{outcome}", i))

    def override(self, i: int) -> None:
        task = self.opinion(i)
        if task is None or task.overridden:
            return
        dissent = task.status is TaskStatus.DONE and task.outcome == "disagree"
        escalated = (
            task.status is TaskStatus.OPEN
            and task.due_on is not None
            and self.today > task.due_on
            and self.chain.missing_opinion is MissingOpinion.ESCALATION
        )
        if not (dissent or escalated):
            return
        status = TaskStatus.DONE
        self.set(task, status=status, overridden=True, outcome=task.outcome or "missing")
        self.log.append(("override", i))


def assert_nothing_skipped(case: Case) -> None:
    """Checked from the log alone: every review step was completed, in order, after the last
    return that reopened it; every department answered, was overridden, or ran out of time."""
    reviews = [i for i, s in enumerate(case.chain.steps) if s.kind is StepKind.REVIEW]
    last = {
        i: max((p for p, m in enumerate(case.log) if m == ("complete", i)), default=-1)
        for i in reviews
    }
    assert all(last[i] >= 0 for i in reviews), "a review step was never completed"
    assert [last[i] for i in reviews] == sorted(last[i] for i in reviews), "steps out of order"
    for position, (move, target) in enumerate(case.log):
        if move == "return":
            assert all(last[i] > position for i in reviews if i >= target), "reopened, not redone"
    decided_at = len(case.log) - 1
    for i, consultation in enumerate(case.chain.consultations):
        moves = [
            m for m, t in case.log[:decided_at] if t == i and m != "complete" and m != "return"
        ]
        given_ = [m for m in moves if m.startswith("opinion:")]
        overridden = "override" in moves
        overdue = case.today > START + timedelta(days=consultation.working_days)
        if not given_:
            deemed = overdue and case.chain.missing_opinion is MissingOpinion.DEEMED_AGREEMENT
            assert deemed or overridden, f"{consultation.department}'s opinion was skipped"
        elif given_[0] == "opinion:disagree" and case.decided == "approve":
            assert overridden, f"approved over {consultation.department}'s disagreement"


MOVES = st.one_of(
    st.tuples(st.just("complete"), st.booleans()),
    st.tuples(st.just("return"), st.integers(0, 5)),
    st.tuples(
        st.just("opinion"), st.integers(0, 2), st.sampled_from(["agree", "disagree", "conditional"])
    ),
    st.tuples(st.just("override"), st.integers(0, 2)),
    st.tuples(st.just("days"), st.integers(1, 12)),
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    reviews=st.integers(1, 4),
    departments=st.integers(0, 3),
    rule=st.sampled_from(list(MissingOpinion)),
    moves=st.lists(MOVES, max_size=40),
)
def test_no_sequence_of_moves_skips_a_step_or_an_opinion(
    reviews: int, departments: int, rule: MissingOpinion, moves: list[tuple[object, ...]]
) -> None:
    case = Case(make_chain(reviews, departments, rule))
    case.accept()
    for move in moves:
        if case.decided:
            break
        name = move[0]
        if name == "complete":
            case.complete(bool(move[1]))
        elif name == "return":
            case.return_to(int(move[1]))  # type: ignore[call-overload]
        elif name == "opinion":
            case.give(int(move[1]), str(move[2]))  # type: ignore[call-overload]
        elif name == "override":
            case.override(int(move[1]))  # type: ignore[call-overload]
        else:
            case.today += timedelta(days=int(move[1]))  # type: ignore[call-overload]
        # a case is at one step at a time, never at 受理 again
        open_steps = [
            t for t in case.tasks if t.kind is TaskKind.STEP and t.status is TaskStatus.OPEN
        ]
        assert len(open_steps) == (0 if case.decided else 1)
        assert all(t.step_index > 0 for t in open_steps)
    if case.decided:
        assert_nothing_skipped(case)


def test_the_straight_path_decides_and_the_walk_reaches_decisions() -> None:
    """The property is not vacuous: straight through, a case is decided."""
    case = Case(make_chain(2, 2, MissingOpinion.DEEMED_AGREEMENT))
    case.accept()
    case.complete(True)
    case.complete(True)
    case.complete(True)
    assert case.decided is None  # the departments have not answered
    case.give(0, "agree")
    case.give(1, "disagree")
    case.complete(True)
    assert case.decided is None  # a disagreement stands
    case.complete(False)
    assert case.decided == "deny"
    assert_nothing_skipped(case)


@pytest.mark.parametrize(
    "steps",
    [
        [("review", "reviewer"), ("decide", "approver")],  # no 受理
        [("accept", "acceptor"), ("review", "reviewer")],  # no decision
        [("accept", "acceptor"), ("decide", "reviewer")],  # a reviewer cannot decide
        [("accept", "acceptor"), ("decide", "approver"), ("decide", "approver")],
    ],
    ids=["no-acceptance", "no-decision", "reviewer-decides", "two-decisions"],
)
def test_a_guide_cannot_declare_a_chain_that_skips_the_law(steps: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationError):
        ReviewChain.model_validate(
            {
                "steps": [
                    {"key": f"s{i}", "name": f"环节{i}", "kind": kind, "role": role}
                    for i, (kind, role) in enumerate(steps)
                ]
            }
        )
