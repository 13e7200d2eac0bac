"""行政区划 codes: ancestry for inheritance of reform modes and staff jurisdiction scope."""

from __future__ import annotations

JURISDICTION_NAMES: dict[str, str] = {
    "310000": "上海市",
    "310115": "浦东新区",
    "310118": "临港新片区",
}


def ancestors(code: str) -> list[str]:
    """The code and the areas above it, most specific first (310115 → 310115, 310000)."""
    chain = [code, code[:4] + "00", code[:2] + "0000"]
    return list(dict.fromkeys(chain))


def covers(staff_jurisdiction: str | None, jurisdiction: str) -> bool:
    """True when staff of ``staff_jurisdiction`` act for ``jurisdiction`` (a city covers districts)."""
    if not staff_jurisdiction:
        return False
    return staff_jurisdiction in ancestors(jurisdiction)


def scope_prefix(code: str) -> str:
    """The code prefix of every area ``code`` covers (310000 → 31, 310100 → 3101)."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code
