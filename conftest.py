"""Settings for every test directory of the repository (pytest reads this file first).

Hypothesis's per-example deadline is a timing assertion: on a loaded two-core machine a correct
property test exceeded it. Speed is measured by the benchmarks under ``bench/``, never by a test,
so property tests run without a deadline (they remain bounded by their example counts).
"""

from hypothesis import settings

settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
