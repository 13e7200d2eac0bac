"""govshared.freeform: what a bounded free-form value may be, and that a hostile one costs little."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from govshared.freeform import (
    DEFAULT_LIMITS,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_KEY_CHARS,
    MAX_MEMBERS,
    MAX_STRING_CHARS,
    BoundedJson,
    JsonLimits,
    _walk,
    json_bounds_error,
)


class Body(BaseModel):
    form: BoundedJson = {}


def deep(levels: int) -> Any:
    value: Any = 1
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


def test_values_within_every_limit_pass() -> None:
    ok: dict[str, Any] = {
        "名称": "上海示范有限公司",
        "面积": 1200.5,
        "是否": True,
        "空": None,
        "明细": [{"型号": "X-1", "数量": 2}],
        "nested": deep(MAX_DEPTH - 1),
        "长文本": "字" * MAX_STRING_CHARS,
        "k" * MAX_KEY_CHARS: 0,
    }
    assert json_bounds_error(ok) is None
    assert Body(form=ok).form == ok


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"x": deep(MAX_DEPTH)}, "嵌套层级"),
        ({f"k{i}": i for i in range(MAX_MEMBERS + 1)}, "合计"),
        ({"x": list(range(MAX_MEMBERS))}, "合计"),  # keys and elements are counted together
        ({"x": "a" * (MAX_STRING_CHARS + 1)}, "字符串"),
        ({"k" * (MAX_KEY_CHARS + 1): 1}, "键名"),
        ({f"k{i}": "字" * 4000 for i in range(6)}, "字节"),  # under 64 K characters, over 64 KB
        ({"x": [float("nan")]}, "有限数"),
        ({"x": float("inf")}, "有限数"),
        ({"x": "\ud800"}, "Unicode"),  # a lone surrogate: valid JSON, unstorable text
        ({"\udc00": 1}, "Unicode"),
    ],
)
def test_each_limit_is_enforced_and_said(value: Any, says: str) -> None:
    error = json_bounds_error(value)
    assert error is not None and says in error
    with pytest.raises(ValidationError) as raised:
        Body(form=value)
    [problem] = raised.value.errors()
    assert problem["loc"] == ("form",) and says in problem["msg"]


def test_the_size_is_the_compact_utf8_serialisation() -> None:
    # 2 bytes of quotes and 3 bytes a character: the limit falls where the bytes do.
    key_and_quotes = len('{"x":""}')
    fits = (MAX_BYTES - key_and_quotes) // 3
    assert json_bounds_error({"x": "字" * fits}, JsonLimits(string_chars=MAX_BYTES)) is None
    assert json_bounds_error({"x": "字" * (fits + 1)}, JsonLimits(string_chars=MAX_BYTES))


def test_escapes_count_as_the_bytes_they_serialise_to() -> None:
    # A control character is 1 character and 6 bytes (\u0001): 11 000 of them exceed 64 KiB.
    wide = JsonLimits(string_chars=MAX_BYTES)
    assert "字节" in str(json_bounds_error({"x": "\x01" * 11_000}, wide))
    assert json_bounds_error({"x": "\x01" * 10_000}, wide) is None
    assert json_bounds_error({"x": 10**300}, wide) is None


def test_a_hostile_value_is_refused_without_being_walked_through() -> None:
    # Half a million keys: refused on the count of the first object, and a value nested far
    # beyond Python's recursion limit needs no recursion to refuse.
    assert "合计" in str(json_bounds_error({str(i): i for i in range(500_000)}))
    assert "嵌套层级" in str(json_bounds_error(deep(100_000)))
    assert DEFAULT_LIMITS.depth == MAX_DEPTH


def test_other_types_are_left_to_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        Body(form="not an object")  # type: ignore[arg-type]
    assert raised.value.errors()[0]["type"] == "dict_type"


# A flat object of strings takes a shortcut (``_flat_strings_within``); it must answer exactly as
# the walk does, for the values it lets through and for those it refuses.
_TEXT = st.text(alphabet=st.sampled_from(["a", "申", "\ud800", '"', "\n", "é"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_TEXT, _TEXT, max_size=30),
    st.builds(
        JsonLimits,
        depth=st.integers(0, 2),
        members=st.integers(0, 40),
        string_chars=st.integers(0, 50),
        key_chars=st.integers(0, 50),
        bytes=st.integers(0, 3000),
    ),
)
def test_a_flat_form_is_judged_as_the_walk_judges_it(value: dict[str, str], limits: Any) -> None:
    assert json_bounds_error(value, limits) == _walk(value, limits)


def test_a_flat_form_with_a_lone_surrogate_or_a_long_value_is_still_refused() -> None:
    assert json_bounds_error({"name": "ok", "bad": "\ud800"}) is not None
    assert json_bounds_error({"\ud800": "x"}) is not None
    assert json_bounds_error({"long": "x" * 8001}) is not None
    assert json_bounds_error({f"k{i}": "申" * 8000 for i in range(12)}) is not None  # > 64 KB
    assert json_bounds_error({f"k{i}": "申请表填写内容" * 3 for i in range(20)}) is None
