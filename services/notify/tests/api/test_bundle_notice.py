"""一件事: the bundle's combined result reaches the applicant's inbox once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from govshared.events import BundleEventData, BundleItemResult, EventType, make_event
from govshared.testing import Tokens, random_uscc

from ..conftest import post_events


async def test_one_combined_notice_with_the_refusal_and_its_reason(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    uscc = random_uscc()
    data = BundleEventData(
        bundle_application_id=uuid.uuid4(),
        bundle_code="YJS-YY-001",
        bundle_name="开办食盐定点生产批发企业",
        applicant_uscc=uscc,
        applicant_name="上海盐业示范有限公司",
        outcome="partially_approved",
        summary="全部事项已办结，部分事项未获许可",
        items=[
            BundleItemResult(
                application_id=uuid.uuid4(),
                application_no="310115-20261207-AAAA0001",
                item_code="JXW-XK-001",
                item_name="食盐定点生产企业审批",
                state="approved",
                state_label="准予许可",
            ),
            BundleItemResult(
                application_id=uuid.uuid4(),
                application_no="310000-20261207-AAAA0002",
                item_code="JXW-XK-002",
                item_name="食盐定点批发企业审批",
                state="denied",
                state_label="不予许可",
                reason="仓储设施不符合食盐储存条件",
            ),
        ],
        occurred_at=datetime.now(UTC),
    )
    event = make_event(
        type=EventType.BUNDLE_DECIDED, source="/services/approval", subject="b", data=data
    ).model_dump(mode="json")
    assert (await post_events(client, tokens, [event])).json()["accepted"] == 1
    assert (await post_events(client, tokens, [event])).json()["duplicates"] == 1
    inbox = (await client.get("/api/v1/inbox", headers=tokens.enterprise(uscc))).json()["items"]
    assert len(inbox) == 1
    assert inbox[0]["title"] == "一件事办理结果：开办食盐定点生产批发企业"
    assert "食盐定点批发企业审批（310000-20261207-AAAA0002）：不予许可" in inbox[0]["body"]
    assert "理由：仓储设施不符合食盐储存条件" in inbox[0]["body"]
