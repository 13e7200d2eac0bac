"""行政区划 codes: the one vocabulary of jurisdictions the three services share.

A code is the six digits of GB/T 2260 (province, city, county: 310000 上海市, 310115 浦东新区),
optionally followed by the three digits of a township (310115001) and the three of a village
committee (310115001001), the 9- and 12-digit forms of the statistical division codes the services
already store. Staff act for their own area and every area under it (a city's 310000 covers the
district 310115 and its townships); nothing else is a jurisdiction: a code that is not one, or a
value that is not a string, is refused wherever it comes from (a token's claim, a query, an event).

Scoping in SQL goes through ``in_scope`` (a code) or ``under_prefix`` (a ``scope_prefix``): a
prefix of digits only, so that no claim can ever bring a LIKE wildcard (``%`` or ``_``) into a
query, and a range before the LIKE, so that an index on the column serves it (``under_prefix``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import ColumnElement, and_

# The provinces of GB/T 2260 (first two digits); a code outside them names no place.
PROVINCES = frozenset(
    {
        *("11", "12", "13", "14", "15"),
        *("21", "22", "23"),
        *("31", "32", "33", "34", "35", "36", "37"),
        *("41", "42", "43", "44", "45", "46"),
        *("50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65"),
        *("71", "81", "82"),
    }
)

_CODE = re.compile(r"\d{6}(?:\d{3}(?:\d{3})?)?", re.ASCII)

JURISDICTION_NAMES: dict[str, str] = {
    "310000": "上海市",
    "310115": "浦东新区",
    "310118": "临港新片区",
}


def is_valid(code: object) -> bool:
    """True for a 6-, 9- or 12-digit 行政区划 code in a real province.

    The county part may be 00 only when the city part is (310000, 310100); a township or village
    part of 000 names no place (310115000 would be the district again, spelt another way).
    """
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return False
    if code[:2] not in PROVINCES:
        return False
    if code[2:4] == "00" and code[4:6] != "00":
        return False
    return not (len(code) >= 9 and code[6:9] == "000") and not (
        len(code) == 12 and code[9:12] == "000"
    )


def _real_code(code: str) -> str:
    if not is_valid(code):
        raise ValueError(f"行政区划代码 {code[:20]} 无效：须为实际省份下的县级及以上代码")
    return code


AreaCode = Annotated[
    str,
    Field(
        pattern=r"^\d{6}$",
        description="行政区划代码 (GB/T 2260, county level or above)",
        examples=["310115"],
    ),
    AfterValidator(_real_code),
]
"""A 6-digit 行政区划 code of a real place, as a request body field (422 otherwise): ``990000``
or ``310015`` name no authority, and a row filed under one is found by no one."""


def check(code: Any, *, what: str = "行政区划代码") -> str:
    """The code itself when valid; ``ValueError`` naming the rule otherwise."""
    if not is_valid(code):
        raise ValueError(f"{what}须为 6、9 或 12 位的有效行政区划代码")
    return str(code)


def ancestors(code: str) -> list[str]:
    """The code and the areas above it, most specific first.

    310115001 → 310115001, 310115, 310100, 310000 (the 6-digit levels as GB/T 2260 writes them).
    """
    base = code[:6]
    chain = [code]
    if len(code) == 12:
        chain.append(code[:9])
    chain += [base, base[:4] + "00", base[:2] + "0000"]
    return list(dict.fromkeys(chain))


def scope_prefix(code: str) -> str:
    """The prefix every code under ``code`` starts with (310000 → 31, 310100 → 3101).

    Only digits (the code was validated), so it is safe in a LIKE pattern.
    """
    check(code)
    if len(code) > 6:
        return code
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def covers(staff: str | None, target: str | None) -> bool:
    """True when staff of ``staff`` act for ``target`` (a city covers its districts' townships)."""
    if not is_valid(staff) or not is_valid(target):
        return False
    assert staff is not None and target is not None
    return target.startswith(scope_prefix(staff))


def next_prefix(prefix: str) -> str:
    """The digit string just past every code starting with ``prefix``, of the same length
    (3101 → 3102, 3109 → 3110, 319 → 320): each code under ``prefix`` sorts below it.

    Never longer than the prefix: a prefix starts with a province (11–82), never all nines; a
    string that is not such a prefix is refused (``ValueError``).
    """
    _check_prefix(prefix)
    following = str(int(prefix) + 1).zfill(len(prefix))
    assert len(following) == len(prefix)
    return following


def _check_prefix(prefix: object) -> None:
    if not (
        isinstance(prefix, str)
        and prefix.isascii()
        and prefix.isdigit()
        and prefix[:2] in PROVINCES
        and len(prefix) <= 12
    ):
        raise ValueError(f"not a jurisdiction prefix: {prefix!r}")


def under_prefix(column: Any, prefix: str, *, autoescape: bool = False) -> ColumnElement[bool]:
    """SQL: ``column`` starts with ``prefix`` (a ``scope_prefix``), in a form an index serves.

    ``column >= prefix AND column < next_prefix(prefix) AND column LIKE 'prefix%'``. The LIKE
    alone is no index condition: PostgreSQL serves a LIKE prefix from a btree only under the C
    collation (or ``text_pattern_ops``), SQLite only with a case-sensitive LIKE, so a staff list
    read the whole table. The range is one any btree on the column serves, on both databases and
    in any collation (a string of digits sorts as its characters do); the LIKE stays the exact
    test within it, and every value it matches is in the range, so the rows are the same.
    """
    _check_prefix(prefix)
    return and_(
        column >= prefix,
        column < next_prefix(prefix),
        column.startswith(prefix, autoescape=autoescape),
    )


def in_scope(column: Any, code: str) -> ColumnElement[bool]:
    """SQL: ``column`` names an area under ``code`` (``under_prefix`` of its ``scope_prefix``)."""
    return under_prefix(column, scope_prefix(code))
