"""Readiness: a database behind the code is not ready; at head or ahead (a roll-out) it is."""

from __future__ import annotations

from govshared.app import Migrations


def test_behind_head_and_ahead() -> None:
    migrations = Migrations(head="c", older=frozenset({"a", "b"}))
    assert migrations.behind(None)
    assert migrations.behind("b")
    assert not migrations.behind("c")
    assert not migrations.behind("d-from-a-newer-release")
