"""The task state machine, the one place that says which transition is legal.

    created -> assigned -> accepted -> en_route -> on_site -> completed -> verified

- `decline` (the crew refuses the offer, or the offer times out) sends an assigned task back to
  created, without a crew, to be offered again;
- `reject` (the work did not pass verification or a dispatcher's review) sends a completed task
  back to assigned, to the same crew, and counts as a reopen; a verified one too, when a
  dispatcher overrides a passed check;
- `approve` is a dispatcher's override of a failed check: the task the check sent back is
  verified after all. Only the verification's override takes it (it checks that the latest
  check failed and reopened the task), so it is not among a state's `allowed_actions`;
- `transfer` hands a task that is with a crew to another crew: it is assigned again;
- `cancel` ends any task not yet completed.

Crews report progress (`accepted`, `en_route`, `on_site`, `completed`) over MQTT, where messages
can arrive late or out of order: `crew_progress` turns a reported status into the transitions
that lead to it, so "on_site" while still assigned also records the acceptance it implies, and a
report the task is already past changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

STATES = (
    "created",
    "assigned",
    "accepted",
    "en_route",
    "on_site",
    "completed",
    "verified",
    "cancelled",
)
OPEN_STATES = ("created", "assigned", "accepted", "en_route", "on_site")
# A crew is busy with a task from the moment it is offered until the work is done.
ACTIVE_STATES = ("assigned", "accepted", "en_route", "on_site")
# Where the work ends; a verified task leaves only by a dispatcher's override (`reject`).
FINAL_STATES = ("verified", "cancelled")


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("assign", ("created",), "assigned"),
        Transition("accept", ("assigned",), "accepted"),
        Transition("decline", ("assigned",), "created"),
        Transition("start", ("accepted",), "en_route"),
        Transition("arrive", ("accepted", "en_route"), "on_site"),
        Transition("complete", ("on_site",), "completed"),
        Transition("verify", ("completed",), "verified"),
        Transition("reject", ("completed", "verified"), "assigned"),
        Transition("approve", ("assigned", "accepted", "en_route", "on_site"), "verified"),
        Transition("transfer", ACTIVE_STATES, "assigned"),
        Transition("cancel", OPEN_STATES, "cancelled"),
    )
}
ACTIONS = tuple(TRANSITIONS)
# Actions only the verification's override takes (see the module's docstring).
OVERRIDE_ACTIONS = ("approve",)

# What a crew's handheld may report, and the action that reaches each state.
CREW_STATUSES = {
    "accepted": "accept",
    "en_route": "start",
    "on_site": "arrive",
    "completed": "complete",
}
# The crew's forward path; a reported status lies somewhere on it.
_PATH = ("assigned", "accepted", "en_route", "on_site", "completed")


class IllegalTransition(Exception):
    def __init__(self, state: str, action: str) -> None:
        self.state = state
        self.action = action
        allowed = ", ".join(allowed_actions(state)) or "none"
        super().__init__(
            f"cannot {action} a task that is {state} (allowed from {state}: {allowed})"
        )


def allowed_actions(state: str, *, overrides: bool = False) -> tuple[str, ...]:
    """The actions legal from `state`; OVERRIDE_ACTIONS only with `overrides`."""
    return tuple(
        t.action
        for t in TRANSITIONS.values()
        if state in t.sources and (overrides or t.action not in OVERRIDE_ACTIONS)
    )


def next_state(state: str, action: str) -> str:
    """The state after `action`, or IllegalTransition naming the current state."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if state not in transition.sources:
        raise IllegalTransition(state, action)
    return transition.target


def crew_progress(state: str, status: str) -> list[str]:
    """The actions that take a task from `state` to the crew's reported `status`, in order:
    empty when the task is already there or past it; IllegalTransition when the status cannot
    follow from `state` (a task not offered to a crew, or ended)."""
    if status not in CREW_STATUSES:
        raise ValueError(f"unknown crew status {status!r}; known: {', '.join(CREW_STATUSES)}")
    if state not in _PATH:
        if state == "verified":
            return []  # a late report of work already checked
        raise IllegalTransition(state, CREW_STATUSES[status])
    here, there = _PATH.index(state), _PATH.index(status)
    if there <= here:
        return []
    actions = []
    for step in _PATH[here + 1 : there + 1]:
        action = CREW_STATUSES[step]
        # en_route is optional on the way: arriving straight from accepted is legal.
        if step == "en_route" and status != "en_route":
            continue
        actions.append(action)
    return actions
