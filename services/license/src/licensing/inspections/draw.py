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
4. For each drawn holder, the inspectors without a conflict with it are ordered by
   ``(H("inspector", USCC, name), name)`` and the first two are assigned.
5. Targets are listed class by class (classes in ``RISK_CLASSES`` order), then by their key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

ALGORITHM = "sha256-strata-v1"
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


@dataclass(frozen=True, slots=True)
class Candidate:
    """A holder that may be drawn, with its risk class."""

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
    digest = hashlib.sha256(seed + _SEP + _SEP.join(p.encode() for p in parts)).digest()
    return int.from_bytes(digest, "big")


def class_quota(seed: bytes, risk_class: RiskClass, *, ratio: float, size: int) -> int:
    """How many holders of a class of ``size`` are drawn (randomised rounding of ratio·size)."""
    u = _key(seed, "round", risk_class.value) / _SCALE
    return min(size, int(ratio * size + u))


def draw(
    *,
    seed_hex: str,
    candidates: Sequence[Candidate],
    ratios: Mapping[RiskClass, float],
    inspectors: Sequence[str],
    conflicts: Iterable[tuple[str, str]],
) -> list[Target]:
    """The targets and their inspectors; the same inputs always give the same draw."""
    seed = bytes.fromhex(seed_hex)
    pool = sorted(set(inspectors))
    barred: dict[str, set[str]] = {}
    for inspector, uscc in conflicts:
        barred.setdefault(uscc, set()).add(inspector)
    by_class: dict[RiskClass, list[str]] = {c: [] for c in RISK_CLASSES}
    for candidate in sorted(candidates, key=lambda c: c.uscc):
        by_class[candidate.risk_class].append(candidate.uscc)
    targets: list[Target] = []
    for risk_class in RISK_CLASSES:
        members = by_class[risk_class]
        quota = class_quota(seed, risk_class, ratio=ratios.get(risk_class, 0.0), size=len(members))
        if quota == 0:
            continue
        keyed = sorted((_key(seed, "holder", uscc), uscc) for uscc in members)
        for _, uscc in keyed[:quota]:
            free = [name for name in pool if name not in barred.get(uscc, ())]
            if len(free) < INSPECTORS_PER_TARGET:
                raise NotEnoughInspectors(uscc)
            chosen = sorted(free, key=lambda name: (_key(seed, "inspector", uscc, name), name))
            targets.append(Target(uscc, risk_class, (chosen[0], chosen[1])))
    return targets


def digest(value: object) -> str:
    """SHA-256 of a JSON value's canonical form (sorted keys, no spaces), published with a draw."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def targets_json(targets: Sequence[Target]) -> list[list[object]]:
    """The draw's result as published: ``[USCC, class, [inspector, inspector]]`` in draw order."""
    return [[t.uscc, t.risk_class.value, list(t.inspectors)] for t in targets]
