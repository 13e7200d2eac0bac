"""Bounded free-form JSON: the one type for every request field whose shape the caller chooses.

An application's ``form`` of an item without declared fields, a 补正 ``supplement``, a licence's
``particulars``, notify's template variables: each is stored, copied into events and audit entries,
and served again on every list page. Unbounded, one request stores a 10 MB string or half a million
keys, or an object nested so deep that it is written but can no longer be serialised (pydantic stops
at 255 levels), after which every page that lists it fails. ``BoundedJson`` refuses such a value
during request validation, before any work is done, as a 422 problem naming the field in
``invalid_params``.

The limits are constants, not settings: they describe what a form or a template variable can
sensibly be, and they must hold the same in every service, since one service's value travels in
another's events. Events themselves are checked on receipt with the looser ``EVENT_LIMITS``
(``govshared.consumer``), which leave room for an envelope that carries a bounded value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator

# Nesting levels: an object of scalars is 1 deep. Forms are flat; 8 leaves room for grouped data.
MAX_DEPTH = 8
# Keys and array elements together, over the whole value.
MAX_MEMBERS = 1000
# Characters in any one string value (a 许可范围 or a remark runs to a few hundred).
MAX_STRING_CHARS = 8000
# Characters in any one key.
MAX_KEY_CHARS = 200
# The whole value serialised as compact UTF-8 JSON: a page of 100 applications stays under 7 MB.
MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How deep, how many members, how long a string or key and how large a value may be."""

    depth: int = MAX_DEPTH
    members: int = MAX_MEMBERS
    string_chars: int = MAX_STRING_CHARS
    key_chars: int = MAX_KEY_CHARS
    bytes: int = MAX_BYTES


DEFAULT_LIMITS = JsonLimits()
# A CloudEvent's ``data``: its party, details (which may carry bounded values) and references.
EVENT_LIMITS = JsonLimits(depth=16, members=20_000, string_chars=20_000, bytes=1024 * 1024)


def json_bounds_error(value: Any, limits: JsonLimits = DEFAULT_LIMITS) -> str | None:
    """What makes ``value`` exceed ``limits`` (in Chinese, with where), or None when it is within.

    The walk is iterative and stops at the first excess, so a hostile value costs no more than the
    limits allow. It keeps a lower and an upper bound of the serialised size (a character takes at
    most 6 bytes, as an escape); only a value whose upper bound passes the limit is serialised to
    measure it exactly, which an ordinary form never is.

    A flat object of strings (most forms) is checked in a few calls to C instead of a step per
    member (17 → 4 µs for a 1 KB form, a twentieth of a keyed submission's Python work besides
    the framework's); anything else, or anything it would refuse, takes the walk, which says why.
    """
    if type(value) is dict and _flat_strings_within(value, limits):
        return None
    return _walk(value, limits)


def _walk(value: Any, limits: JsonLimits) -> str | None:
    stack: list[tuple[Any, int, _Trail]] = [(value, 1, None)]
    members = least = most = 0
    while stack:
        node, depth, trail = stack.pop()
        if isinstance(node, dict | list):
            if depth > limits.depth:
                return f"嵌套层级超过 {limits.depth} 层（{_where(trail)}）"
            members += len(node)
            if members > limits.members:
                return f"键和数组元素合计超过 {limits.members} 个"
            least += 2
            most += 2 + len(node)
            if isinstance(node, dict):
                for key, child in node.items():
                    text = key if isinstance(key, str) else str(key)
                    if len(text) > limits.key_chars:
                        return f"键名超过 {limits.key_chars} 个字符（{_where(trail)}）"
                    if not text.isascii() and _unencodable(text):
                        return f"键名含有无效的 Unicode 字符（{_where(trail)}）"
                    least += len(text) + 3
                    most += 6 * len(text) + 3
                    stack.append((child, depth + 1, (text, trail)))
            else:
                stack.extend((child, depth + 1, (i, trail)) for i, child in enumerate(node))
        elif isinstance(node, str):
            if len(node) > limits.string_chars:
                return f"字符串超过 {limits.string_chars} 个字符（{_where(trail)}）"
            if not node.isascii() and _unencodable(node):
                # A lone surrogate (``"\ud800"``) decodes from JSON but no database stores it.
                return f"字符串含有无效的 Unicode 字符（{_where(trail)}）"
            least += len(node) + 2
            most += 6 * len(node) + 2
        elif node is None or isinstance(node, bool):
            least += 4
            most += 5
        elif isinstance(node, int):
            least += 1
            most += node.bit_length() // 3 + 2  # decimal digits and a sign
        elif isinstance(node, float):
            if not math.isfinite(node):
                return f"数值必须是有限数（{_where(trail)}）"
            least += 1
            most += 24  # the longest repr of a double
        else:  # not from JSON: serialised with str() below
            text = str(node)
            least += len(text)
            most += 6 * len(text) + 2
        if least > limits.bytes:
            return f"序列化后超过 {limits.bytes} 字节"
    if most <= limits.bytes:
        return None
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())
    if size > limits.bytes:
        return f"序列化后超过 {limits.bytes} 字节（{size} 字节）"
    return None


def _flat_strings_within(value: dict[Any, Any], limits: JsonLimits) -> bool:
    """Whether ``value`` is an object of string keys and string values within every limit
    (False also when it is not of that shape: the caller walks it then)."""
    if len(value) > limits.members or limits.depth < 1:
        return False
    keys, values = list(value), list(value.values())
    if not all(type(k) is str for k in keys) or not all(type(v) is str for v in values):
        return False
    if max(map(len, keys), default=0) > limits.key_chars:
        return False
    if max(map(len, values), default=0) > limits.string_chars:
        return False
    text = "".join(keys) + "".join(values)
    # At most 6 bytes a character (an escape), 6 of quotes, colon and comma a member, 2 braces:
    # the bound the walk keeps; within it, no need to serialise.
    if 6 * len(text) + 6 * len(keys) + 2 > limits.bytes:
        return False
    return text.isascii() or not _unencodable(text)


# Where a node is: its key or index, then its parent's trail (built only to report an error).
_Trail = tuple[Any, Any] | None


def _where(trail: _Trail) -> str:
    steps: list[str] = []
    while trail is not None:
        steps.append(str(trail[0])[:40])
        trail = trail[1]
    return f"位置 /{'/'.join(reversed(steps))}"[:120] if steps else "顶层"


def _unencodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _bounded(value: Any, limits: JsonLimits) -> Any:
    # Only objects and arrays are walked; anything else is left to the field's own type check.
    if isinstance(value, dict | list):
        error = json_bounds_error(value, limits)
        if error is not None:
            raise ValueError(error)
    return value


# The default limits as a validator of any field, typed or not: ``Annotated[Guide, JSON_BOUNDS]``
# bounds a document whose lists and mappings are otherwise unbounded, before it is parsed.
JSON_BOUNDS = BeforeValidator(partial(_bounded, limits=DEFAULT_LIMITS))
# A free-form JSON object within the default limits: use it for every such request field.
BoundedJson = Annotated[dict[str, Any], JSON_BOUNDS]
