"""The task state machine: every legal path, every illegal step refused with the state named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline.server.tasks.states import (
    ACTIONS,
    CREW_STATUSES,
    FINAL_STATES,
    STATES,
    TRANSITIONS,
    IllegalTransition,
    allowed_actions,
    crew_progress,
    next_state,
)


def test_the_happy_path() -> None:
    state = "created"
    for action in ("assign", "accept", "start", "arrive", "complete", "verify"):
        state = next_state(state, action)
    assert state == "verified"


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("assigned", "decline", "created"),
        ("completed", "reject", "assigned"),
        ("verified", "reject", "assigned"),
        ("accepted", "approve", "verified"),
        ("on_site", "transfer", "assigned"),
        ("accepted", "arrive", "on_site"),
        ("en_route", "cancel", "cancelled"),
    ],
)
def test_side_paths(state: str, action: str, expected: str) -> None:
    assert next_state(state, action) == expected


def test_an_illegal_step_names_the_current_state() -> None:
    with pytest.raises(IllegalTransition) as caught:
        next_state("created", "complete")
    assert caught.value.state == "created"
    assert "created" in str(caught.value) and "assign" in str(caught.value)


def test_unknown_action() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        next_state("created", "teleport")


@given(st.lists(st.sampled_from(ACTIONS), max_size=30))
def test_any_sequence_stays_within_the_machine(actions: list[str]) -> None:
    """Applying any actions, legal ones move to a known state, illegal ones change nothing;
    nothing leaves a final state but by a dispatcher's override (`reject` of verified work),
    and nothing reaches `verified` without `completed` first or the override of a check
    (`approve`)."""
    state, seen = "created", ["created"]
    for action in actions:
        try:
            new = next_state(state, action)
        except IllegalTransition as exc:
            assert exc.state == state
            assert action not in allowed_actions(state, overrides=True)
            continue
        assert state not in FINAL_STATES or (state, action) == ("verified", "reject")
        assert new in STATES
        assert action in allowed_actions(state, overrides=True)
        if new == "verified":
            assert state == "completed" or action == "approve"
        if new == "completed":
            assert state == "on_site"
        state = new
        seen.append(state)


@given(st.sampled_from(STATES), st.sampled_from(list(CREW_STATUSES)))
def test_crew_progress_only_uses_legal_steps(state: str, status: str) -> None:
    try:
        actions = crew_progress(state, status)
    except IllegalTransition:
        assert state in ("created", "cancelled")
        return
    current = state
    for action in actions:
        current = next_state(current, action)
    if actions:
        assert current == status
    else:
        # Already there or past it: a late or repeated report.
        order = ("assigned", "accepted", "en_route", "on_site", "completed", "verified")
        assert order.index(state) >= order.index(status)


def test_approve_is_left_to_the_override_of_a_check() -> None:
    for state in ("assigned", "accepted", "en_route", "on_site"):
        assert next_state(state, "approve") == "verified"
        assert "approve" not in allowed_actions(state)
        assert "approve" in allowed_actions(state, overrides=True)
    with pytest.raises(IllegalTransition):
        next_state("completed", "approve")


def test_crew_progress_fills_in_what_a_report_implies() -> None:
    assert crew_progress("assigned", "on_site") == ["accept", "arrive"]
    assert crew_progress("assigned", "en_route") == ["accept", "start"]
    assert crew_progress("en_route", "completed") == ["arrive", "complete"]
    assert crew_progress("on_site", "accepted") == []


def test_every_state_is_reachable() -> None:
    reached, frontier = {"created"}, ["created"]
    while frontier:
        state = frontier.pop()
        for action in allowed_actions(state):
            target = TRANSITIONS[action].target
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(STATES)
