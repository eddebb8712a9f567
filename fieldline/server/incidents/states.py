"""The incident's life, the one place that says which step is legal.

    open -> isolate -> isolating -> valves_closed -> repairing -> repaired -> restoring
         -> restored -> closed;   cancel: any state before closed -> cancelled

`isolate` is the dispatcher's (the broken pipe confirmed); the rest follow the incident's tasks
(services.on_task_event): the valves closed, the repair verified, the valves open again.
`link` (another report joins) and `estimate` (a new restoration time) keep the state.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldline.gis.errors import Conflict

STATES = ("open", "isolating", "repairing", "restoring", "closed", "cancelled")
ACTIVE_STATES = ("open", "isolating", "repairing", "restoring")
# While these hold, customers are without water (the valves are being or have been shut).
WATER_OFF_STATES = ("isolating", "repairing", "restoring")
ACTOR_KINDS = ("system", "user")


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str | None, ...]  # None: the incident does not exist yet
    target: str | None  # None: the state stays


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("open", (None,), "open"),
        Transition("link", ACTIVE_STATES, None),
        Transition("isolate", ("open",), "isolating"),
        Transition("valves_closed", ("isolating",), "repairing"),
        Transition("repaired", ("isolating", "repairing"), "restoring"),
        Transition("restored", ("restoring",), "closed"),
        Transition("estimate", ACTIVE_STATES, None),
        Transition("cancel", ACTIVE_STATES, "cancelled"),
    )
}
ACTIONS = tuple(TRANSITIONS)
# What people do through the API; the rest is the system's.
USER_ACTIONS = ("isolate", "estimate", "cancel")


class IllegalIncidentStep(Conflict):
    def __init__(self, state: str, action: str) -> None:
        allowed = ", ".join(allowed_actions(state)) or "none"
        super().__init__(
            f"cannot {action} an incident that is {state} (allowed from {state}: {allowed})"
        )
        self.state = state
        self.action = action


def next_state(state: str | None, action: str) -> str:
    transition = TRANSITIONS[action]
    if state not in transition.sources:
        raise IllegalIncidentStep(state or "new", action)
    return transition.target or str(state)


def allowed_actions(state: str) -> tuple[str, ...]:
    """What a person may do with an incident in `state`."""
    return tuple(a for a in USER_ACTIONS if state in TRANSITIONS[a].sources)
