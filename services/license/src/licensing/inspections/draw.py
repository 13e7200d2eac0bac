"""The 双随机 draw: a pure function of its published inputs, so that anyone can replay it.

Algorithm ``sha256-strata-v1`` (the same in any language; only SHA-256 is needed):

``H(parts…)`` is SHA-256 over the seed's 32 bytes followed by the UTF-8 parts joined by ``0x1f``,
read as a big-endian integer.

1. Inputs: the seed (64 hex digits, generated with ``secrets`` at draw time); the candidates, one
   per holder, as ``(USCC, risk class)`` sorted by USCC; the sampling ratio of each risk class; the
   inspector pool, sorted; the declared conflicts (回避) as ``(inspector, USCC)`` pairs.
2. Holders are sampled per risk class (stratified): a class of ``n`` holders with ratio ``r`` gets
   ``k = floor(r·n + u)`` targets, where ``u = H("round", class) / 2^256`` (randomised rounding,
   so that the expected count is exactly ``r·n`` and a class of few holders is not always skipped).
3. Within a class, the ``k`` holders with the smallest ``(H("holder", USCC), USCC)`` are drawn: a
   uniform sample without replacement. Each holder appears once among the candidates, so no holder
   is drawn twice.
4. For each drawn holder, ``E`` is the sorted pool without the inspectors in conflict with it
   (``m`` of them): the first inspector is ``E[H("inspector", USCC, "1") mod m]``; removed from
   ``E``, the second is ``E[H("inspector", USCC, "2") mod (m − 1)]`` (a uniform pair: the modulo
   of a 256-bit number has no bias worth the name).
5. Targets are listed class by class (classes in ``RISK_CLASSES`` order), then by their key.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import NamedTuple

ALGORITHM = "sha256-strata-v1"
# 行政处罚法 Art. 42: inspections by no fewer than two law enforcement officers.
INSPECTORS_PER_TARGET = 2
_SEP = b"\x1f"
_SCALE = 1 << 256


class RiskClass(StrEnum):
    """信用风险分类 (低 → 高): the higher the class, the higher its sampling ratio."""

    A = "A"  # 低风险
    B = "B"  # 一般风险
    C = "C"  # 较高风险
    D = "D"  # 高风险


RISK_CLASSES: tuple[RiskClass, ...] = (RiskClass.A, RiskClass.B, RiskClass.C, RiskClass.D)
RISK_CLASS_LABELS = {
    RiskClass.A: "低风险",
    RiskClass.B: "一般风险",
    RiskClass.C: "较高风险",
    RiskClass.D: "高风险",
}


class NotEnoughInspectors(ValueError):
    """Fewer than two inspectors of the pool are free of a conflict with a drawn holder."""

    def __init__(self, uscc: str) -> None:
        super().__init__(uscc)
        self.uscc = uscc


class Candidate(NamedTuple):
    """A holder that may be drawn, with its risk class (a tuple: a draw makes one per holder of
    a whole register)."""

    uscc: str
    risk_class: RiskClass


@dataclass(frozen=True, slots=True)
class Target:
    """A drawn holder and its two inspectors."""

    uscc: str
    risk_class: RiskClass
    inspectors: tuple[str, str]


def risk_class_of(*, records: int, serious: bool) -> RiskClass:
    """A holder's class from its bad-credit records: none A, one B, more C, any serious D."""
    if serious:
        return RiskClass.D
    if records >= 2:
        return RiskClass.C
    if records == 1:
        return RiskClass.B
    return RiskClass.A


def _key(seed: bytes, *parts: str) -> int:
    """``H(parts…)`` of the module docstring."""
    digest = hashlib.sha256(seed + _SEP + _SEP.join(p.encode() for p in parts)).digest()
    return int.from_bytes(digest, "big")


def _holder_keys(seed: bytes, members: Sequence[str]) -> list[tuple[bytes, str]]:
    """``(H("holder", USCC), USCC)`` of each member; the digest's bytes order as its big-endian
    integer does, so they are compared as they are (the hot loop of a large draw)."""
    prefix = seed + _SEP + b"holder" + _SEP
    sha256 = hashlib.sha256
    return [(sha256(prefix + uscc.encode()).digest(), uscc) for uscc in members]


def class_quota(seed: bytes, risk_class: RiskClass, *, ratio: float, size: int) -> int:
    """How many holders of a class of ``size`` are drawn (randomised rounding of ratio·size)."""
    u = _key(seed, "round", risk_class.value) / _SCALE
    return min(size, int(ratio * size + u))


def draw(
    *,
    seed_hex: str,
    candidates: Iterable[Sequence[str]],
    ratios: Mapping[RiskClass, float],
    inspectors: Sequence[str],
    conflicts: Iterable[tuple[str, str]],
) -> list[Target]:
    """The targets and their inspectors; the same inputs always give the same draw.

    ``candidates`` are ``(USCC, risk class)`` pairs (``Candidate``, or as published:
    ``["91…", "B"]``)."""
    seed = bytes.fromhex(seed_hex)
    pool = sorted(set(inspectors))
    barred: dict[str, set[str]] = {}
    for inspector, uscc in conflicts:
        barred.setdefault(uscc, set()).add(inspector)
    # Keyed by the enum, looked up by its value as well (a StrEnum hashes as its string).
    by_class: dict[str, list[str]] = {c: [] for c in RISK_CLASSES}
    for uscc, risk_class in sorted(candidates, key=itemgetter(0)):
        by_class[risk_class].append(uscc)
    targets: list[Target] = []
    for risk_class in RISK_CLASSES:
        members = by_class[risk_class]
        quota = class_quota(seed, risk_class, ratio=ratios.get(risk_class, 0.0), size=len(members))
        if quota == 0:
            continue
        for _, uscc in heapq.nsmallest(quota, _holder_keys(seed, members)):
            conflicted = barred.get(uscc)
            free = [n for n in pool if n not in conflicted] if conflicted else list(pool)
            if len(free) < INSPECTORS_PER_TARGET:
                raise NotEnoughInspectors(uscc)
            first = free.pop(_key(seed, "inspector", uscc, "1") % len(free))
            second = free[_key(seed, "inspector", uscc, "2") % len(free)]
            targets.append(Target(uscc, risk_class, (first, second)))
    return targets


def canonical(value: object) -> str:
    """A JSON value's canonical form (sorted keys, no spaces), whose SHA-256 is published."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(value: object) -> str:
    """SHA-256 of a JSON value's canonical form, published with a draw."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def inputs_digest(inputs: Mapping[str, object], *, candidates_json: str) -> str:
    """``digest(inputs)`` with the candidates' canonical form given (serialised once, for the
    digest and for the record: a register of them). A key is the only place the text
    ``"candidates":null`` can appear in canonical JSON (a string's quotes are escaped)."""
    text = canonical({**inputs, "candidates": None}).replace(
        '"candidates":null', '"candidates":' + candidates_json, 1
    )
    return hashlib.sha256(text.encode()).hexdigest()


def targets_json(targets: Sequence[Target]) -> list[list[object]]:
    """The draw's result as published: ``[USCC, class, [inspector, inspector]]`` in draw order."""
    return [[t.uscc, t.risk_class.value, list(t.inspectors)] for t in targets]
