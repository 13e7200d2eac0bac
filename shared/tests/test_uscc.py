"""统一社会信用代码: the vectors of docs/architecture.md and both check characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from govshared.testing import random_uscc
from govshared.uscc import ALPHABET, USCC, is_valid_uscc, uscc_check_char, uscc_error


class Holder(BaseModel):
    uscc: USCC


def test_design_vectors() -> None:
    assert is_valid_uscc("91350100M000100Y43")
    assert not is_valid_uscc("91350100M000100Y4Z")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91350100M000100Y4", "18位"),
        ("91350100M000100Y44", "校验码错误"),
        ("91350100M0001O0Y43", "非法字符"),
        ("91350100I000100Y43", "非法字符"),
    ],
)
def test_errors_say_why(value: str, reason: str) -> None:
    error = uscc_error(value)
    assert error is not None and reason in error


def test_organisation_code_check_is_verified_too() -> None:
    # Change the organisation code's own check digit and fix up the USCC check character:
    # the GB 32100 check passes, the embedded GB 11714 check must not.
    first17 = "91350100" + "M000100Y" + "5"  # the right organisation check character is 4
    candidate = first17 + uscc_check_char(first17)
    assert uscc_error(candidate) == "统一社会信用代码中的组织机构代码校验码错误"


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_codes_are_valid(seed: int) -> None:
    import random

    assert is_valid_uscc(random_uscc(random.Random(seed)))


@given(st.integers(min_value=0, max_value=16), st.sampled_from(ALPHABET))
def test_any_single_substitution_is_caught(position: int, char: str) -> None:
    valid = "91350100M000100Y43"
    changed = valid[:position] + char + valid[position + 1 :]
    if changed != valid:
        assert not is_valid_uscc(changed)


def test_pydantic_type_normalises_and_rejects() -> None:
    assert Holder(uscc=" 91350100m000100y43 ".strip()).uscc == "91350100M000100Y43"
    with pytest.raises(ValidationError):
        Holder(uscc="91350100M000100Y4Z")
