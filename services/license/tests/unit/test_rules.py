"""Rules that need no database: jurisdictions, validity arithmetic, the digest, the shipped data."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from govshared.events import ReformMode
from govshared.jurisdictions import ancestors, covers, scope_prefix
from licensing.catalogue.service import shipped_catalogue, summary_text
from licensing.licences.digest import certificate_fields, content_digest
from licensing.licences.policy import add_months, validity_end


def test_ancestors_most_specific_first() -> None:
    assert ancestors("310115") == ["310115", "310100", "310000"]
    assert ancestors("310000") == ["310000"]
    assert ancestors("330106") == ["330106", "330100", "330000"]


@pytest.mark.parametrize(
    ("staff", "area", "expected"),
    [
        ("310000", "310115", True),
        ("310115", "310115", True),
        ("310115", "310118", False),
        ("310118", "310000", False),
        (None, "310000", False),
        ("320000", "310115", False),
    ],
)
def test_covers(staff: str | None, area: str, expected: bool) -> None:
    assert covers(staff, area) is expected


def test_scope_prefix() -> None:
    assert [scope_prefix(c) for c in ("310000", "310100", "310115")] == ["31", "3101", "310115"]


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 11, 28), 60, date(2031, 11, 27)),
        (date(2024, 2, 29), 12, date(2025, 2, 27)),  # no 29 Feb in 2025: the 28th, minus a day
        (date(2026, 1, 31), 1, date(2026, 2, 27)),
        (date(2026, 12, 1), 36, date(2029, 11, 30)),
    ],
)
def test_validity_end(start: date, months: int, end: date) -> None:
    assert validity_end(start, months) == end


def test_add_months_and_no_limit() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert validity_end(date(2026, 1, 1), None) is None


def test_summary_sentence() -> None:
    text = summary_text(
        date(2019, 12, 1), "310000", {ReformMode.CANCELLED: 1, ReformMode.OPTIMIZED: 6}
    )
    assert text == "截至2019-12-01，上海市7项事项纳入“一网通办”：直接取消审批1项，优化审批服务6项"


def test_shipped_first_batch_is_seven_items_one_cancelled_six_optimized() -> None:
    data = shipped_catalogue()
    first_batch = [
        v
        for v in data["versions"]
        if v["jurisdiction"] == "310000" and v["effective_from"] <= "2019-12-01"
    ]
    assert Counter(v["mode"] for v in first_batch) == {"optimize_service": 6, "cancel_approval": 1}
    codes = {i["code"] for i in data["items"]}
    # Every item of approval's demo catalogue, with the same mode (tests/inprocess checks that).
    assert codes == {
        "JXW-XK-001", "JXW-XK-002", "JXW-XK-003", "JXW-XK-004", "JXW-XK-005", "JXW-XK-006",
        "JXW-XK-007", "JXW-QX-008", "JXW-BA-009", "JXW-BA-010", "JXW-CN-011", "JXW-CN-012",
        "JXW-XK-013",
    }  # fmt: skip
    for version in data["versions"]:
        assert version["item_code"] in codes
        assert (version["mode"] == "notification_commitment") == bool(version["commitment_text"])


def test_digest_is_stable_and_sensitive() -> None:
    fields = {
        "licence_no": "YDP-2026-000001",
        "version": 1,
        "licence_type": "salt_wholesale_certificate",
        "holder_name": "上海盐业示范有限公司",
        "holder_uscc": "91350100M000100Y43",
        "issuing_authority": "上海市经济和信息化委员会",
        "issued_on": date(2026, 11, 28),
        "valid_from": date(2026, 11, 28),
        "valid_until": date(2031, 11, 27),
        "particulars": {"仓储地址": "申江路1号"},
    }
    assert content_digest(certificate_fields(fields)) == content_digest(
        dict(reversed(fields.items()))
    )
    tampered = {**fields, "holder_name": "上海盐业冒名有限公司"}
    assert content_digest(tampered) != content_digest(fields)
