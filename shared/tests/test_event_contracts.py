"""Contract snapshots: the JSON schema of every event type's data, and of the envelope.

A change to what an event carries (a field added, removed, renamed or re-typed) changes a schema
here and fails this test with a diff, so that a wire format never changes unnoticed. When the
change is meant, regenerate the snapshots and commit them with it:

    UPDATE_CONTRACT_SNAPSHOTS=1 python3 -m uv run --locked pytest shared/tests/test_event_contracts.py

(docs/architecture.md, "Event contracts").
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from govshared import event_details
from govshared.events import (
    APPLICATION_DETAILS,
    EVENT_DATA,
    ApplicationEventData,
    CloudEvent,
    EventType,
    make_event,
    parse_data,
)
from govshared.testing import check_event_contract

SNAPSHOTS = Path(__file__).parent / "contract"
UPDATE = os.environ.get("UPDATE_CONTRACT_SNAPSHOTS") == "1"


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    """File name → schema: one per event type, and the envelope."""
    found = {f"{t.value}.json": EVENT_DATA[t].model_json_schema() for t in EventType}
    found["envelope.json"] = CloudEvent.model_json_schema()
    return found


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def test_every_event_type_has_a_data_model() -> None:
    assert set(EVENT_DATA) == set(EventType)
    application = {t for t in EventType if t.value.startswith("cn.gov.approval.application.")}
    assert set(APPLICATION_DETAILS) == application
    # Every application event's details are typed for that event type, not left an open dict.
    for event_type in application:
        details = EVENT_DATA[event_type].model_fields["details"].annotation
        assert isinstance(details, type) and issubclass(details, event_details.ApplicationDetails)


@pytest.mark.parametrize("name", sorted(_schemas()))
def test_schema_matches_its_snapshot(name: str) -> None:
    current = _text(_schemas()[name])
    path = SNAPSHOTS / name
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(current, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_CONTRACT_SNAPSHOTS=1"
    committed = path.read_text(encoding="utf-8")
    if committed != current:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                f"committed {path.name}",
                "the code's schema",
            )
        )
        pytest.fail(
            f"the wire format of {name} changed (UPDATE_CONTRACT_SNAPSHOTS=1 if meant):\n{diff}"
        )


def test_no_stale_snapshots() -> None:
    assert {p.name for p in SNAPSHOTS.glob("*.json")} == set(_schemas())


def _party() -> dict[str, Any]:
    return {
        "application_id": uuid.uuid4(),
        "application_no": "310000-20261128-ABCDEF12",
        "item_code": "JXW-XK-002",
        "item_name": "食盐定点批发企业审批",
        "applicant_uscc": "91350100M000100Y43",
        "applicant_name": "示范公司",
        "jurisdiction": "310000",
        "state": "accepted",
        "occurred_at": datetime.now(UTC),
    }


def test_typed_details_keep_the_wire_as_sent() -> None:
    """A consumer parses the details into its type's model and hands on exactly what came: a
    field not sent stays absent (never null), an unknown key survives, a date keeps its spelling."""
    sent = {
        "task_id": str(uuid.uuid4()),
        "department": "sw",
        "department_name": "市商务委员会",
        "role": "reviewer",
        "due_on": "2026-12-18",
        "added_by_a_newer_approval": {"x": 1},
    }
    event = make_event(
        type=EventType.APPLICATION_OPINION_REQUESTED,
        source="/services/approval",
        subject="s",
        data=ApplicationEventData(**_party(), details=sent),
    )
    data = parse_data(CloudEvent.model_validate_json(event.model_dump_json()))
    assert isinstance(data, ApplicationEventData)
    details = data.details
    assert isinstance(details, event_details.OpinionRequestedDetails)
    assert details.due_on == date(2026, 12, 18) and details.assignee is None
    assert data.model_dump(mode="json")["details"] == sent
    check_event_contract(event)


def test_a_transfer_keeps_its_from_key() -> None:
    sent = {"task_id": str(uuid.uuid4()), "step": "review", "step_name": "审查", "from": "s:a"}
    event = make_event(
        type=EventType.APPLICATION_TASK_TRANSFERRED,
        source="/services/approval",
        subject="s",
        data=ApplicationEventData(**_party(), details=sent),
    )
    data = parse_data(event)
    assert isinstance(data, ApplicationEventData)
    assert data.details.from_ == "s:a"
    assert data.model_dump(mode="json")["details"] == sent


def test_contract_check_names_a_mistyped_detail() -> None:
    event = make_event(
        type=EventType.APPLICATION_PAUSED,
        source="/services/approval",
        subject="s",
        data=ApplicationEventData(
            **_party(), details={"pause_reason": "hearing", "expected_days": "ten"}
        ),
    )
    with pytest.raises(AssertionError, match="expected_days"):
        check_event_contract(event)
