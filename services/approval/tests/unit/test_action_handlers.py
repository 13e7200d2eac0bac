"""Each action of the lifecycle table has exactly one handler, and a route if it is the case's own.

The table (``approval.lifecycle.RULES``) is where an action's rule lives; its handler is where
everything else it does lives: the application's actions in ``approval.handlers``, the review
chain's moves in ``approval.tasks.handlers``. An action added to the table without a handler, a
handler for an action the table does not know, or one action handled twice fails here.
"""

from __future__ import annotations

from approval.handlers import HANDLERS
from approval.lifecycle import RULES, TASK_MOVES
from approval.routes import ACTION_PATHS
from approval.tasks.handlers import HANDLERS as TASK_HANDLERS


def test_every_action_of_the_table_has_exactly_one_handler() -> None:
    assert set(HANDLERS).isdisjoint(TASK_HANDLERS)
    assert set(HANDLERS) | set(TASK_HANDLERS) == set(RULES)
    assert set(HANDLERS) == set(RULES) - set(TASK_MOVES)
    assert set(TASK_HANDLERS) == set(TASK_MOVES)


def test_every_application_action_has_its_route_and_no_route_lacks_a_handler() -> None:
    assert set(ACTION_PATHS) == set(HANDLERS)


def test_handlers_read_what_their_rule_needs() -> None:
    for action, rule in RULES.items():
        handler = HANDLERS.get(action)
        if handler is None:
            continue
        # Resuming returns the case to the state it was paused from: read from the trail.
        if rule.returns:
            assert handler.reads_trail, action
        # Who may act on an item handled jointly depends on the item's decision terms (Art. 42(2)).
        if rule.joint_roles is not None:
            assert handler.reads_terms, action
