"""Cross-service tests: the three services as real processes on loopback ports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# No per-example deadline: `make test` runs four workers and the fault tests on two cores, where a
# 200 ms example measures the machine's load, not the code (a property's speed is the benchmarks').
settings.register_profile("make-test", deadline=None)
settings.load_profile("make-test")

# Fixtures made once for many tests: a worker that runs one of their tests makes them.
_SHARED_SCOPES = ("package", "module", "class")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group for ``make test`` (pytest-xdist ``--dist loadgroup``): the tests that share a
    module-, package- or class-scoped fixture (a suite of service processes, a service under
    fuzzing) on one worker, one group per file and parameter of those fixtures, so that each is
    made once; every other test is handed out on its own, to whichever worker is free.

    Tests are isolated per test (the services' ``app`` fixtures empty the tables after each,
    ``govshared.testing.CleanTables``), so none relies on another having run before it.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = [
            name
            for name in item.fixturenames
            if (defs := info.name2fixturedefs.get(name)) and defs[-1].scope in _SHARED_SCOPES
        ]
        if not shared:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        key = "-".join(_label(params[name]) for name in shared if name in params)
        # No "]" or "@" in a group's name: xdist reads the name after the nodeid's last "@".
        group = f"{item.path.relative_to(ROOT).as_posix()}:{key}"
        item.add_marker(pytest.mark.xdist_group(group))


def _label(value: object) -> str:
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)
