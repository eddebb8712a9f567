"""Creating tasks of every kind, the checks that name the field at fault, the promised times
from the service-level settings, and transitions with what each one records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry import LineString, shape
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import active_task_counts as crews_active_task_counts
from fieldline.server.tasks import events, services
from fieldline.server.tasks.models import Task, TaskAsset, TaskTransition
from fieldline.server.tasks.states import IllegalTransition
from fieldline.settings import load_settings
from tests.server.tasks.conftest import NOW, caller, repair_on


def _assets(session: Session, task: Task) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        sa.select(TaskAsset).where(TaskAsset.task_id == task.id).order_by(TaskAsset.ordinal)
    )
    return [(row.role, row.layer, row.asset_id) for row in rows]


def _site(task: Task) -> tuple[float, float]:
    point = to_shape(task.site)
    return point.x, point.y


# --- creating -----------------------------------------------------------------------------


def test_a_repair_on_a_pipe_is_at_its_middle_with_promises_from_its_priority(
    session: Session, city: dict[str, Any]
) -> None:
    pipe = city["pipes"][10]
    task = services.create_task(session, repair_on(pipe["id"]), "dispatcher-1", NOW)
    middle = LineString(pipe["geometry"]["coordinates"]).interpolate(0.5, normalized=True)
    assert _site(task) == pytest.approx((middle.x, middle.y), abs=1e-9)
    assert task.public_id.startswith("T-") and task.state == "created"
    assert task.district == pipe["properties"]["district"]
    assert task.promised_arrival_at == NOW + timedelta(minutes=45)
    assert task.promised_completion_at == NOW + timedelta(minutes=480)
    assert not task.appointment
    assert task.required_skills == ["pipe_repair", "excavation"]
    assert _assets(session, task) == [("target", "pipes", pipe["id"])]
    assert task.caller == caller()
    assert task.created_by == "dispatcher-1" and task.created_at == NOW


def test_service_levels_come_from_the_settings(session: Session, city: dict[str, Any]) -> None:
    settings = load_settings(
        sla_arrival_minutes="P1=15,P2=60,P3=600,P4=6000",
        sla_completion_minutes="P1=100,P2=200,P3=3000,P4=9000",
    )
    body = repair_on(city["pipes"][0]["id"], priority="P3")
    task = services.create_task(session, body, "d", NOW, settings)
    assert task.promised_arrival_at == NOW + timedelta(minutes=600)
    assert task.promised_completion_at == NOW + timedelta(minutes=3000)


def test_an_appointment_overrides_the_arrival_and_keeps_the_working_time(
    session: Session, city: dict[str, Any]
) -> None:
    appointment = NOW + timedelta(days=2)
    body = repair_on(city["pipes"][0]["id"], promised_arrival_at=appointment.isoformat())
    task = services.create_task(session, body, "d", NOW)
    assert task.appointment and task.promised_arrival_at == appointment
    assert task.promised_completion_at == appointment + timedelta(minutes=480 - 45)


def test_a_repair_at_a_point_and_a_crew_report_at_its_position(session: Session) -> None:
    at_point = services.create_task(
        session,
        {
            "kind": "repair",
            "priority": "P2",
            "source": "scada_alarm",
            "site": {"lon": 24.94, "lat": 60.17},
        },
        "scada",
        NOW,
    )
    assert _site(at_point) == (24.94, 60.17) and _assets(session, at_point) == []
    assert at_point.title == "Repair" and at_point.caller is None
    reported = services.create_task(
        session,
        {"kind": "repair", "priority": "P3", "source": "crew_report", "position": [24.95, 60.16]},
        "C-000001",
        NOW,
    )
    assert _site(reported) == (24.95, 60.16)
    assert to_shape(reported.source_position).coords[0] == (24.95, 60.16)


def test_a_valve_operation_is_at_the_valve(session: Session, city: dict[str, Any]) -> None:
    valve = city["valves"][3]
    body = {
        "kind": "valve_operation",
        "priority": "P2",
        "source": "plan",
        "assets": [{"layer": "valves", "id": valve["id"]}],
    }
    task = services.create_task(session, body, "planner", NOW)
    assert _site(task) == pytest.approx(tuple(valve["geometry"]["coordinates"]), abs=1e-9)
    assert task.title == f"Valve operation {valve['id']}"
    assert _assets(session, task) == [("target", "valves", valve["id"])]


def test_a_meter_reading_lists_its_meters_in_order(session: Session, city: dict[str, Any]) -> None:
    meters = [m["id"] for m in city["meters"][5:9]]
    body = {
        "kind": "meter_reading",
        "priority": "P4",
        "source": "plan",
        "assets": [{"layer": "meters", "id": m} for m in reversed(meters)],
    }
    task = services.create_task(session, body, "planner", NOW)
    assert task.site is None and task.district is not None
    assert _assets(session, task) == [("meter", "meters", m) for m in reversed(meters)]
    assert task.promised_completion_at == NOW + timedelta(minutes=10080)


def test_a_patrol_has_pipes_checkpoints_an_area_and_a_mode(
    session: Session, city: dict[str, Any]
) -> None:
    pipes = [p["id"] for p in city["pipes"][:3]]
    hydrant, valve = city["hydrants"][0]["id"], city["valves"][0]["id"]
    area = {
        "type": "Polygon",
        "coordinates": [[[24.93, 60.16], [24.95, 60.16], [24.95, 60.18], [24.93, 60.16]]],
    }
    body = {
        "kind": "patrol",
        "priority": "P4",
        "source": "plan",
        "mode": "foot",
        "area": area,
        "assets": [{"layer": "pipes", "id": p} for p in pipes]
        + [{"layer": "hydrants", "id": hydrant}, {"layer": "valves", "id": valve}],
        "required_skills": ["patrol"],
    }
    task = services.create_task(session, body, "planner", NOW)
    assert task.mode == "foot" and task.site is None
    assert to_shape(task.area).equals(shape(area))
    assert _assets(session, task) == [("pipe", "pipes", p) for p in pipes] + [
        ("checkpoint", "hydrants", hydrant),
        ("checkpoint", "valves", valve),
    ]
    area_only = services.create_task(
        session, {"kind": "patrol", "priority": "P4", "source": "plan", "area": area}, "p", NOW
    )
    assert area_only.mode == "vehicle" and _assets(session, area_only) == []


def test_an_inspection_may_name_several_assets(session: Session, city: dict[str, Any]) -> None:
    hydrants = [h["id"] for h in city["hydrants"][:2]]
    body = {
        "kind": "inspection",
        "priority": "P3",
        "source": "plan",
        "assets": [{"layer": "hydrants", "id": h} for h in hydrants],
    }
    task = services.create_task(session, body, "planner", NOW)
    first = city["hydrants"][0]["geometry"]["coordinates"]
    assert _site(task) == pytest.approx(tuple(first), abs=1e-9)
    assert [a[2] for a in _assets(session, task)] == hydrants


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("no kind", {"kind": None}, "kind"),
    ("unknown priority", {"priority": "P5"}, "priority"),
    ("unknown source", {"source": "twitter"}, "source"),
    ("unknown field", {"colour": "red"}, "colour"),
    ("a call centre task without caller", {"caller": None}, "caller"),
    ("a caller without phone or email", {"caller": {"name": "Aino"}}, "caller"),
    ("a bad phone", {"caller": {"phone": "call me"}}, "caller.phone"),
    ("a bad email", {"caller": {"email": "aino@"}}, "caller.email"),
    ("an unknown skill", {"required_skills": ["welding", "juggling"]}, "required_skills[1]"),
    (
        "an appointment in the past",
        {"promised_arrival_at": "2020-01-01T00:00:00Z"},
        "promised_arrival_at",
    ),
    ("a naive appointment", {"promised_arrival_at": "2030-01-01T00:00:00"}, "promised_arrival_at"),
    ("a mode on a repair", {"mode": "foot"}, "mode"),
    ("an area on a repair", {"area": {"type": "Polygon", "coordinates": []}}, "area"),
    ("a position without crew report", {"position": [24.9, 60.1]}, "position"),
    ("a site off the globe", {"site": [200, 10]}, "site"),
    ("assets not a list", {"assets": "P-000001"}, "assets"),
    ("two assets for a repair", {"assets": [{"layer": "pipes", "id": "P-000001"}] * 2}, "assets"),
    (
        "an asset of a layer that is not",
        {"assets": [{"layer": "cables", "id": "X"}]},
        "assets[0].layer",
    ),
    ("a title too long", {"title": "x" * 201}, "title"),
]


@pytest.mark.parametrize(("case", "changes", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_names_the_field_and_writes_nothing(
    session: Session, city: dict[str, Any], case: str, changes: dict[str, Any], field: str
) -> None:
    body = repair_on(city["pipes"][0]["id"])
    body.update(changes)
    body = {key: value for key, value in body.items() if value is not None}
    before = session.scalar(sa.select(sa.func.count()).select_from(Task))
    with pytest.raises(InvalidField) as caught:
        services.create_task(session, body, "d", NOW)
    assert caught.value.field == field, caught.value.detail
    assert session.scalar(sa.select(sa.func.count()).select_from(Task)) == before


def test_missing_assets_are_named_by_position(session: Session, city: dict[str, Any]) -> None:
    meters = [{"layer": "meters", "id": m["id"]} for m in city["meters"][:2]]
    meters.append({"layer": "meters", "id": "M-999999"})
    body = {"kind": "meter_reading", "priority": "P4", "source": "plan", "assets": meters}
    with pytest.raises(InvalidField) as caught:
        services.create_task(session, body, "d", NOW)
    assert caught.value.field == "assets[2].id" and "M-999999" in caught.value.detail
    wrong_layer = {**body, "assets": [{"layer": "valves", "id": city["valves"][0]["id"]}]}
    with pytest.raises(InvalidField) as caught:
        services.create_task(session, wrong_layer, "d", NOW)
    assert caught.value.field == "assets[0].layer"
    twice = {**body, "assets": [meters[0], meters[0]]}
    with pytest.raises(InvalidField) as caught:
        services.create_task(session, twice, "d", NOW)
    assert caught.value.field == "assets[1].id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "repair", "priority": "P1", "source": "plan"}, "assets"),
        ({"kind": "patrol", "priority": "P4", "source": "plan"}, "assets"),
        ({"kind": "valve_operation", "priority": "P4", "source": "plan"}, "assets"),
        (
            {"kind": "repair", "priority": "P1", "source": "crew_report", "site": [24.9, 60.1]},
            "position",
        ),
        ({"kind": "patrol", "priority": "P4", "source": "plan", "site": [24.9, 60.1]}, "site"),
        (
            {
                "kind": "patrol",
                "priority": "P4",
                "source": "plan",
                # A bow tie: not a valid polygon.
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                },
            },
            "area",
        ),
    ],
)
def test_each_kind_needs_its_place(session: Session, body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        services.create_task(session, body, "d", NOW)
    assert caught.value.field == field


# --- editing ------------------------------------------------------------------------------


def test_a_priority_change_moves_the_promises_until_the_work_is_done(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    task = services.create_task(session, repair_on(city["pipes"][0]["id"], priority="P3"), "d", NOW)
    later = NOW + timedelta(minutes=5)
    services.update_task(session, task.public_id, {"priority": "P1", "title": "Now urgent"}, later)
    assert (task.priority, task.title) == ("P1", "Now urgent")
    with pytest.raises(InvalidField) as caught:
        services.update_task(session, task.public_id, {"title": "Lost", "priority": "P9"}, later)
    assert caught.value.field == "priority" and task.title == "Now urgent"
    assert task.promised_arrival_at == NOW + timedelta(minutes=45)  # from the creation
    assert task.promised_completion_at == NOW + timedelta(minutes=480)
    for action, crew in (
        ("assign", crews[0]),
        ("accept", None),
        ("arrive", None),
        ("complete", None),
    ):
        services.transition(
            session, task, action, actor="d", actor_kind="dispatcher", at=later, crew=crew
        )
    with pytest.raises(Conflict):
        services.update_task(session, task.public_id, {"priority": "P2"}, later)
    with pytest.raises(InvalidField) as caught:
        services.update_task(session, task.public_id, {"caller": None}, later)
    assert caught.value.field == "caller"  # a call-centre task keeps a caller
    services.update_task(session, task.public_id, {"description": "Done, road resurfaced"}, later)
    assert task.priority == "P1"


def test_a_priority_change_keeps_an_appointment(session: Session, city: dict[str, Any]) -> None:
    appointment = NOW + timedelta(days=1)
    body = repair_on(
        city["pipes"][0]["id"], priority="P4", promised_arrival_at=appointment.isoformat()
    )
    task = services.create_task(session, body, "d", NOW)
    services.update_task(session, task.public_id, {"priority": "P2"}, NOW)
    assert task.promised_arrival_at == appointment
    assert task.promised_completion_at == appointment + timedelta(minutes=1440 - 120)


# --- transitions --------------------------------------------------------------------------


def _steps(session: Session, task: Task) -> list[TaskTransition]:
    return services.history(session, task)


def test_every_transition_is_recorded_with_actor_time_position_and_note(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    task = services.create_task(session, repair_on(city["pipes"][1]["id"]), "d", NOW)
    at = [NOW + timedelta(minutes=m) for m in range(10)]
    services.transition(
        session, task, "assign", actor="anna", actor_kind="dispatcher", at=at[1], crew=north
    )
    assert task.state == "assigned" and task.crew_id == north.id
    assert task.offer_expires_at == at[1] + timedelta(seconds=300)
    services.transition(
        session,
        task,
        "accept",
        actor=north.public_id,
        actor_kind="crew",
        at=at[2],
        position=(24.93, 60.17),
    )
    assert task.offer_expires_at is None
    services.transition(session, task, "start", actor=north.public_id, actor_kind="crew", at=at[3])
    services.transition(
        session,
        task,
        "transfer",
        actor="anna",
        actor_kind="dispatcher",
        at=at[4],
        crew=south.public_id,
        note="north is needed elsewhere",
    )
    assert (task.state, task.crew_id, task.transfer_count) == ("assigned", south.id, 1)
    for m, action in ((5, "accept"), (6, "arrive")):
        services.transition(
            session, task, action, actor=south.public_id, actor_kind="crew", at=at[m]
        )
    services.transition(
        session,
        task,
        "complete",
        actor=south.public_id,
        actor_kind="crew",
        at=at[7],
        position=(24.94, 60.171),
        note="clamp fitted",
    )
    assert task.arrived_at == at[6] and task.completed_at == at[7]
    services.transition(
        session,
        task,
        "reject",
        actor="sam",
        actor_kind="dispatcher",
        at=at[8],
        note="still leaking",
    )
    assert (task.state, task.reopen_count, task.completed_at) == ("assigned", 1, None)
    assert task.crew_id == south.id and task.offer_expires_at == at[8] + timedelta(seconds=300)
    for m, action in ((9, "accept"), (9, "arrive")):
        services.transition(
            session, task, action, actor=south.public_id, actor_kind="crew", at=at[m]
        )
    assert task.arrived_at == at[6]  # the first arrival counts

    steps = _steps(session, task)
    assert [(s.action, s.from_state, s.to_state) for s in steps] == [
        ("assign", "created", "assigned"),
        ("accept", "assigned", "accepted"),
        ("start", "accepted", "en_route"),
        ("transfer", "en_route", "assigned"),
        ("accept", "assigned", "accepted"),
        ("arrive", "accepted", "on_site"),
        ("complete", "on_site", "completed"),
        ("reject", "completed", "assigned"),
        ("accept", "assigned", "accepted"),
        ("arrive", "accepted", "on_site"),
    ]
    assert [s.at for s in steps] == [at[m] for m in (1, 2, 3, 4, 5, 6, 7, 8, 9, 9)]
    assert [s.actor for s in steps[:4]] == ["anna", north.public_id, north.public_id, "anna"]
    assert [s.crew_id for s in steps[:5]] == [north.id, north.id, north.id, south.id, south.id]
    assert to_shape(steps[1].position).coords[0] == (24.93, 60.17)
    assert steps[2].position is None
    assert (steps[3].note, steps[6].note, steps[7].note) == (
        "north is needed elsewhere",
        "clamp fitted",
        "still leaking",
    )


def test_decline_clears_the_crew_and_cancel_keeps_the_record(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north = crews[0]
    task = services.create_task(session, repair_on(city["pipes"][1]["id"]), "d", NOW)
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    services.transition(session, task, "decline", actor=north.public_id, actor_kind="crew", at=NOW)
    assert (task.state, task.crew_id, task.offer_expires_at) == ("created", None, None)
    assert _steps(session, task)[-1].crew_id == north.id  # who declined
    services.transition(
        session, task, "cancel", actor="d", actor_kind="dispatcher", at=NOW, note="duplicate"
    )
    assert task.state == "cancelled"


def test_an_illegal_transition_names_the_current_state_and_changes_nothing(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    task = services.create_task(session, repair_on(city["pipes"][1]["id"]), "d", NOW)
    with pytest.raises(IllegalTransition) as caught:
        services.transition(session, task, "complete", actor="d", actor_kind="dispatcher", at=NOW)
    assert caught.value.state == "created" and "created" in str(caught.value)
    assert task.state == "created" and _steps(session, task) == []


@pytest.mark.parametrize(
    ("action", "crew", "note", "field"),
    [
        ("assign", None, None, "crew"),
        ("assign", "C-999999", None, "crew"),
        ("fly", None, None, "action"),
    ],
)
def test_bad_transition_arguments_name_the_field(
    session: Session,
    city: dict[str, Any],
    action: str,
    crew: str | None,
    note: str | None,
    field: str,
) -> None:
    task = services.create_task(session, repair_on(city["pipes"][1]["id"]), "d", NOW)
    with pytest.raises(InvalidField) as caught:
        services.transition(
            session, task, action, actor="d", actor_kind="dispatcher", at=NOW, crew=crew, note=note
        )
    assert caught.value.field == field


def test_transfer_goes_to_another_crew_and_reject_says_why(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north = crews[0]
    task = services.create_task(session, repair_on(city["pipes"][1]["id"]), "d", NOW)
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    with pytest.raises(InvalidField) as caught:
        services.transition(
            session, task, "transfer", actor="d", actor_kind="dispatcher", at=NOW, crew=north
        )
    assert caught.value.field == "crew" and task.transfer_count == 0
    with pytest.raises(InvalidField) as caught:
        services.transition(
            session, task, "accept", actor="d", actor_kind="dispatcher", at=NOW, crew=north
        )
    assert caught.value.field == "crew"
    for action in ("accept", "arrive", "complete"):
        services.transition(session, task, action, actor="d", actor_kind="dispatcher", at=NOW)
    with pytest.raises(InvalidField) as caught:
        services.transition(session, task, "reject", actor="d", actor_kind="dispatcher", at=NOW)
    assert caught.value.field == "note" and task.reopen_count == 0


def test_a_crew_moves_only_its_own_task_and_only_forward(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    task = services.create_task(session, repair_on(city["pipes"][1]["id"]), "d", NOW)
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    with pytest.raises(Conflict):
        services.transition(
            session, task, "accept", actor=south.public_id, actor_kind="crew", at=NOW
        )
    services.transition(session, task, "accept", actor=north.public_id, actor_kind="crew", at=NOW)
    with pytest.raises(InvalidField) as caught:
        services.transition(
            session, task, "cancel", actor=north.public_id, actor_kind="crew", at=NOW
        )
    assert caught.value.field == "action" and task.state == "accepted"


# --- crews' status reports ----------------------------------------------------------------


def test_crew_reports_out_of_order_and_repeated_record_each_step_once(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north = crews[0]
    task = services.create_task(session, repair_on(city["pipes"][2]["id"]), "d", NOW)
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    t = [NOW + timedelta(minutes=m) for m in range(5)]
    on_site = services.apply_crew_status(
        session, north.public_id, task.public_id, "on_site", t[3], (24.9, 60.2), "found it"
    )
    # On site implies the acceptance; the route is optional.
    assert [s.action for s in on_site] == ["accept", "arrive"]
    assert [s.note for s in on_site] == [None, "found it"]
    for status, at in (("accepted", t[1]), ("en_route", t[2]), ("on_site", t[3])):
        assert (
            services.apply_crew_status(session, north.public_id, task.public_id, status, at) == []
        )
    services.apply_crew_status(session, north.public_id, task.public_id, "completed", t[4])
    assert (
        services.apply_crew_status(session, north.public_id, task.public_id, "completed", t[4])
        == []
    )
    steps = _steps(session, task)
    assert [s.action for s in steps] == ["assign", "accept", "arrive", "complete"]
    assert all(s.actor == north.public_id and s.actor_kind == "crew" for s in steps[1:])
    assert task.state == "completed" and task.arrived_at == t[3]
    services.transition(session, task, "verify", actor="d", actor_kind="dispatcher", at=t[4])
    assert (
        services.apply_crew_status(session, north.public_id, task.public_id, "completed", t[4])
        == []
    )


def test_crew_reports_that_cannot_apply_say_why(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    task = services.create_task(session, repair_on(city["pipes"][2]["id"]), "d", NOW)

    def refused(crew: str, task_id: str, status: str) -> str:
        with pytest.raises(services.StatusRefused) as caught:
            services.apply_crew_status(session, crew, task_id, status, NOW)
        return caught.value.reason

    assert refused(north.public_id, "T-999999", "accepted") == "unknown_task"
    assert (
        refused(north.public_id, task.public_id, "accepted") == "task_not_yours"
    )  # offered to none
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    assert refused(south.public_id, task.public_id, "accepted") == "task_not_yours"
    assert refused("C-999999", task.public_id, "accepted") == "unknown_crew"
    assert refused(north.public_id, task.public_id, "lunch") == "unknown_status"
    services.apply_crew_status(session, north.public_id, task.public_id, "accepted", NOW)
    assert refused(north.public_id, task.public_id, "rejected") == "illegal_transition"
    services.transition(session, task, "cancel", actor="d", actor_kind="dispatcher", at=NOW)
    assert refused(north.public_id, task.public_id, "on_site") == "illegal_transition"
    assert [s.action for s in _steps(session, task)] == ["assign", "accept", "cancel"]


def test_a_crew_turns_an_offer_down_once(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north = crews[0]
    task = services.create_task(session, repair_on(city["pipes"][2]["id"]), "d", NOW)
    services.transition(
        session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
    )
    declined = services.apply_crew_status(session, north.public_id, task.public_id, "rejected", NOW)
    assert [s.action for s in declined] == ["decline"] and task.crew_id is None
    later = NOW + timedelta(seconds=5)
    assert (
        services.apply_crew_status(session, north.public_id, task.public_id, "rejected", later)
        == []
    )


# --- events and counts --------------------------------------------------------------------


def test_listeners_hear_each_change_inside_the_transaction(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    heard: list[tuple[str, str]] = []

    def listener(listening: Session, event: events.TaskEvent) -> None:
        # Inside the transaction: the change is visible to the listener's queries.
        state = listening.scalar(sa.select(Task.state).where(Task.public_id == event.task_id))
        heard.append((event.action, str(state)))

    events.listen(listener)
    try:
        events.take(session)
        task = services.create_task(session, repair_on(city["pipes"][2]["id"]), "d", NOW)
        services.transition(
            session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=crews[0]
        )
        services.transition(
            session, task, "transfer", actor="d", actor_kind="dispatcher", at=NOW, crew=crews[1]
        )
    finally:
        events._listeners.remove(listener)
    assert heard == [
        ("create", "created"),
        ("assign", "assigned"),
        ("transfer", "assigned"),
    ]
    recorded = events.take(session)
    assert [(e.action, e.crew_id, e.previous_crew_id) for e in recorded] == [
        ("create", None, None),
        ("assign", crews[0].public_id, None),
        ("transfer", crews[1].public_id, crews[0].public_id),
    ]
    assert events.take(session) == []


def test_active_task_counts_feed_the_crews_status(
    session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    before = services.active_task_counts(session)
    tasks = [
        services.create_task(session, repair_on(city["pipes"][i]["id"]), "d", NOW) for i in range(3)
    ]
    for task in tasks:
        services.transition(
            session, task, "assign", actor="d", actor_kind="dispatcher", at=NOW, crew=north
        )
    for action in ("accept", "arrive", "complete"):
        services.transition(session, tasks[0], action, actor="d", actor_kind="dispatcher", at=NOW)
    services.transition(
        session, tasks[1], "transfer", actor="d", actor_kind="dispatcher", at=NOW, crew=south
    )
    counts = services.active_task_counts(session)
    assert counts.get(north.id) == 1 and counts.get(south.id) == 1
    assert {k: v for k, v in counts.items() if k not in (north.id, south.id)} == before
    assert crews_active_task_counts(session) == counts
