"""Settings for every test directory of the repository (pytest reads this file first).

Hypothesis's per-example deadline is a timing assertion: on a loaded two-core machine a correct
property test exceeded it. Speed is measured by the benchmarks under ``bench/``, never by a test,
so property tests run without a deadline (they remain bounded by their example counts).
"""

import pytest
from hypothesis import settings

settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


# Fixtures made once for many tests: a worker that runs one of their tests makes them.
_SHARED_SCOPES = ("package", "module", "class")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group for ``make test`` (pytest-xdist ``--dist loadgroup``): the tests that share a
    module-, package- or class-scoped fixture (a suite of service processes, a service under
    fuzzing) on one worker, one group per file and parameter of those fixtures, so that each is
    made once; every other test is handed out on its own, to whichever worker is free.

    Tests are isolated per test (the services' ``database_url`` fixtures empty the tables after each,
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
        group = f"{item.path.relative_to(item.config.rootpath).as_posix()}:{key}"
        item.add_marker(pytest.mark.xdist_group(group))


def _label(value: object) -> str:
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)
