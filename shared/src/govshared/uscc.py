"""统一社会信用代码 (GB 32100-2015) with its embedded GB 11714 organisation code check.

``python -m govshared.uscc`` prints a random valid one (``make uscc``), for trying the API as
another enterprise.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, Field

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """The GB 11714 check character for an organisation code's first 8 characters."""
    total = sum(_ORG_ALPHABET.index(ch) * w for ch, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


@lru_cache(maxsize=4096)
def uscc_error(value: str) -> str | None:
    """Why ``value`` is not a valid 统一社会信用代码, or None when it is (memoised: the same
    enterprises' codes are checked on every request they make)."""
    if len(value) != 18:
        return "统一社会信用代码应为18位"
    bad = [ch for ch in value if ch not in _VALUE]
    if bad:
        return f"统一社会信用代码含有非法字符：{''.join(bad)}"
    if uscc_check_char(value[:17]) != value[17]:
        return "统一社会信用代码校验码错误"
    org = value[8:17]
    if any(ch not in _ORG_ALPHABET for ch in org[:8]) or org_code_check_char(org[:8]) != org[8]:
        return "统一社会信用代码中的组织机构代码校验码错误"
    return None


def is_valid_uscc(value: str) -> bool:
    """True when both check characters of the code are right."""
    return uscc_error(value) is None


def _validate(value: str) -> str:
    value = value.strip().upper()
    error = uscc_error(value)
    if error:
        raise ValueError(error)
    return value


USCC = Annotated[
    str,
    Field(
        min_length=18,
        max_length=18,
        description="统一社会信用代码 (GB 32100-2015)",
        examples=["91350100M000100Y43"],
    ),
    AfterValidator(_validate),
]


def random_uscc(rng: random.Random | None = None) -> str:
    """A random valid 统一社会信用代码 (both check characters right), of a 浦东新区 enterprise."""
    rng = rng or random.Random()  # noqa: S311 - test and demo data, not secrets
    org8 = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    org = org8 + org_code_check_char(org8)  # the check may be 'X', which is in ALPHABET
    first17 = "91" + "310115" + org
    return first17 + uscc_check_char(first17)


if __name__ == "__main__":
    print(random_uscc())
