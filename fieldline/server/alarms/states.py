"""The alarm's life, the one place that says which step is legal.

    (condition holds) raise -> active -> acknowledge -> acknowledged -> clear -> cleared
                                     \\------------------ clear -----------------/

The evaluation raises and clears; people acknowledge. An alarm cleared before anyone
acknowledged it stays cleared: its history shows that nobody did. A cleared alarm is final:
the condition coming back raises a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldline.gis.errors import Conflict

STATES = ("active", "acknowledged", "cleared")
OPEN_STATES = ("active", "acknowledged")
ACTOR_KINDS = ("system", "user")


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str | None, ...]  # None: the alarm does not exist yet
    target: str


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("raise", (None,), "active"),
        Transition("acknowledge", ("active",), "acknowledged"),
        Transition("clear", OPEN_STATES, "cleared"),
    )
}
ACTIONS = tuple(TRANSITIONS)
# What people do; raising and clearing are the evaluation's.
USER_ACTIONS = ("acknowledge",)


class IllegalAlarmStep(Conflict):
    def __init__(self, state: str, action: str) -> None:
        super().__init__(f"cannot {action} an alarm that is {state}")
        self.state = state
        self.action = action


def next_state(state: str | None, action: str) -> str:
    transition = TRANSITIONS[action]
    if state not in transition.sources:
        raise IllegalAlarmStep(state or "new", action)
    return transition.target


def allowed_actions(state: str) -> tuple[str, ...]:
    """What a person may do with an alarm in `state`."""
    return tuple(a for a in USER_ACTIONS if state in TRANSITIONS[a].sources)
