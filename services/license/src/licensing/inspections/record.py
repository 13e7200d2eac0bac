"""A plan's append-only record: each entry hashed over its content and the previous entry's hash
(``govshared.hashchain``, the canonical form of approval's audit trail)."""

from __future__ import annotations

import uuid
from typing import Any

from govshared.hashchain import GENESIS, chain_intact, entry_hash
from licensing import clock
from licensing.inspections.repository import RECORDS, InspectionRepository
from licensing.inspections.schemas import PlanRecordOut, RecordEntryOut


async def append(
    repository: InspectionRepository,
    plan_id: uuid.UUID,
    *,
    kind: str,
    payload: dict[str, Any],
    actor: str,
) -> None:
    """Append an entry to a plan's record, chained to the last one."""
    last = await repository.last_record(plan_id)
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = {
        "plan_id": str(plan_id),
        "seq": seq,
        "kind": kind,
        "payload": payload,
        "actor": actor,
        "recorded_at": clock.now(),
    }
    row = {**entry, "id": uuid.uuid4(), "plan_id": plan_id, "prev_hash": prev}
    row["hash"] = entry_hash(prev, entry)
    await repository.insert(RECORDS, [row])


async def checked(repository: InspectionRepository, plan_id: uuid.UUID) -> PlanRecordOut:
    """A plan's record, checked link by link."""
    entries = await repository.records(plan_id)
    intact = chain_intact(
        (
            e.prev_hash,
            e.hash,
            {
                "plan_id": str(e.plan_id),
                "seq": e.seq,
                "kind": e.kind,
                "payload": e.payload,
                "actor": e.actor,
                "recorded_at": e.recorded_at,
            },
        )
        for e in entries
    )
    return PlanRecordOut(intact=intact, entries=[RecordEntryOut.model_validate(e) for e in entries])
