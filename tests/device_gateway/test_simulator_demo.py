"""What `fieldline demo` sets up for the simulated crews and call centre: crews that may take
any task at any hour, one of them left to a person on the handheld app, every priority
dispatched automatically, and the processes beside the web server with the options they
need."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from fieldline import demo
from fieldline.cli import main
from fieldline.gis.errors import InvalidField
from fieldline.server.crews.models import CREW_SKILLS
from fieldline.server.crews.services import get_crew, list_shifts, signed_in_device
from fieldline.settings import Settings, get_settings, load_settings, priority_minutes


def test_demo_crews_have_every_skill_and_are_on_shift_today_and_tomorrow(
    session: Session,
) -> None:
    first = demo.demo_crews(session, count=3)
    again = demo.demo_crews(session, count=3)  # a second start changes nothing
    assert first == again and len(first) == 3
    now = datetime.now(UTC)
    for crew_id in first:
        assert get_crew(session, crew_id).skills == list(CREW_SKILLS)
        shifts = list_shifts(session, crew_id, None, None)
        assert len(shifts) == 2
        assert any(s.starts_at <= now < s.ends_at for s in shifts)
        assert any(s.starts_at <= now + timedelta(hours=24) < s.ends_at for s in shifts)


def test_the_handheld_crew_has_every_skill_a_shift_and_its_own_device(
    session: Session,
) -> None:
    simulated = demo.demo_crews(session, count=2)
    first = demo.handheld_crew(session)
    assert demo.handheld_crew(session) == first  # a second start changes nothing
    assert first not in simulated
    crew = get_crew(session, first)
    assert crew.name == demo.HANDHELD_CREW and crew.skills == list(CREW_SKILLS)
    now = datetime.now(UTC)
    shifts = list_shifts(session, first, None, None)
    assert len(shifts) == 2
    assert any(s.starts_at <= now < s.ends_at for s in shifts)
    assert any(s.starts_at <= now + timedelta(hours=24) < s.ends_at for s in shifts)
    # What the crew app's sign-in checks: the device is this crew's handheld.
    signed_in, device = signed_in_device(session, first, demo.HANDHELD_DEVICE)
    assert signed_in.public_id == first and device.kind == "own"
    with pytest.raises(InvalidField):
        signed_in_device(session, simulated[0], demo.HANDHELD_DEVICE)


# Every setting the demo writes into the environment (for the processes it starts).
DEMO_WRITES = (demo.AUTO_DISPATCH, demo.MIN_DWELL, demo.SLA_ARRIVAL, demo.SLA_COMPLETION,
               demo.SLA_DUE_SOON)  # fmt: skip


@pytest.fixture(autouse=True)
def _environment_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Set, then removed: what the demo writes is undone after each test, so no other test
    runs with the demo's settings."""
    for name in DEMO_WRITES:
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    yield
    get_settings.cache_clear()


def test_every_priority_is_dispatched_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen = demo.demo_settings(load_settings())
    assert chosen.auto_dispatch_priority_names == ("P1", "P2", "P3", "P4")
    assert load_settings().auto_dispatch_priority_names == ("P1", "P2", "P3", "P4")  # children
    monkeypatch.setenv(demo.AUTO_DISPATCH, "P1")
    assert demo.demo_settings(load_settings()).auto_dispatch_priority_names == ("P1",)


def test_faster_crews_need_shorter_times_on_site_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    usual = load_settings().verification_min_dwell
    chosen = demo.demo_settings(load_settings(), speed=10).verification_min_dwell
    assert chosen == {name: seconds // 10 for name, seconds in usual.items()}
    assert load_settings().verification_min_dwell == chosen  # children
    monkeypatch.setenv(demo.MIN_DWELL, ",".join(f"{n}=5" for n in usual))
    assert set(demo.demo_settings(load_settings(), speed=10).verification_min_dwell.values()) == {5}


def test_faster_work_shortens_the_promises_but_not_the_offers_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scaled = (demo.SLA_ARRIVAL, demo.SLA_COMPLETION, demo.SLA_DUE_SOON)
    usual = load_settings()
    chosen = demo.demo_settings(load_settings(), speed=6)
    arrival = priority_minutes(usual.sla_arrival_minutes)
    assert priority_minutes(chosen.sla_arrival_minutes) == {
        p: max(1, round(m / 6)) for p, m in arrival.items()
    }
    assert priority_minutes(chosen.sla_arrival_minutes)["P1"] < arrival["P1"]
    assert chosen.sla_due_soon_minutes == round(usual.sla_due_soon_minutes / 6)
    # A person on the handheld app has the usual time to accept an offer.
    assert chosen.offer_timeout_s == usual.offer_timeout_s
    assert load_settings().sla_completion_minutes == chosen.sla_completion_minutes  # children
    # At the usual speed nothing is shortened.
    for name in scaled:
        monkeypatch.delenv(name)
    same = demo.demo_settings(load_settings(), speed=1.0)
    assert same.sla_arrival_minutes == usual.sla_arrival_minutes


def test_the_demo_runs_a_gateway_the_scheduler_and_the_simulation_with_jobs() -> None:
    settings: Settings = load_settings(host="0.0.0.0", port=18080)
    commands = demo.helpers(
        settings, ["C-000001", "C-000002"], speed=30, jobs_per_hour=12, handheld="C-000007"
    )
    names = [command[3] for command in commands]
    assert names == ["gateway", "scheduler", "simulate"]
    simulate = commands[-1][4:]
    context = main.commands["simulate"].make_context("simulate", list(simulate))
    assert context.params["work_speed"] == 30
    assert context.params["jobs_per_hour"] == 12
    assert context.params["api_url"] == "http://127.0.0.1:18080"
    assert context.params["crew_ids"] == ("C-000001", "C-000002")
    assert context.params["inbox"] is True
    assert context.params["handheld_crew"] == "C-000007"  # planned for, not simulated
    assert context.params["main_break_every_min"] == demo.MAIN_BREAK_EVERY_MIN
    assert context.params["stations"] is True  # the break is seen by a station
