"""`fieldline crews`, `fieldline devices add` and `fieldline stations bind` run as a user runs
them against the test database; what they bind is what the gateway's directory then knows."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from fieldline.cli import main
from fieldline.device_gateway.directory import DatabaseDirectory
from fieldline.server.mqtt_access import acl
from fieldline.server.mqtt_access.broker import BrokerAdmin
from fieldline.settings import load_settings

CREW_ID = re.compile(r"C-\d{6}")


@pytest.fixture
def tag(engine: sa.Engine) -> Iterator[str]:
    """A name part of this test's own; the commands commit, so what carries it is removed."""
    tag = uuid.uuid4().hex[:8]
    yield tag
    with engine.begin() as connection:
        # Devices' broker logins made by `devices add` for this test's crews, and their audit.
        crews = connection.execute(
            sa.text("SELECT public_id FROM crews WHERE name LIKE :t"), {"t": f"%{tag}%"}
        ).scalars()
        subjects = [f"{crew_id} %" for crew_id in crews]
        logins = connection.execute(
            sa.text("DELETE FROM device_credentials WHERE subject LIKE ANY(:s) RETURNING username"),
            {"s": subjects},
        ).scalars()
        admin = BrokerAdmin.from_settings(load_settings())
        for username in set(logins):
            admin.send(acl.delete_commands(username))
            connection.execute(
                sa.text("DELETE FROM security_events WHERE subject = :u"), {"u": username}
            )
        connection.execute(sa.text("DELETE FROM crews WHERE name LIKE :t"), {"t": f"%{tag}%"})
        connection.execute(
            sa.text("DELETE FROM station_bindings WHERE source LIKE :t"), {"t": f"%{tag}%"}
        )


@pytest.fixture
def runner(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tag: str) -> CliRunner:
    monkeypatch.setenv("FIELDLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("FIELDLINE_REDIS_PREFIX", f"fieldline-roster-cli-{tag}")
    return CliRunner()


def add_crew(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(main, ["crews", "add", *args])
    assert result.exit_code == 0, result.output
    crew_id = result.output.strip()
    assert CREW_ID.fullmatch(crew_id)
    return crew_id


def test_crews_add_prints_the_id_and_stores_the_crew(
    runner: CliRunner, engine: sa.Engine, tag: str
) -> None:
    crew_id = add_crew(
        runner,
        f"Night crew {tag}",
        "--mode",
        "foot",
        "--skill",
        "patrol",
        "--skill",
        "welding",
        "--depot",
        "24.94,60.17",
    )
    with engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT name, mode, skills, ST_X(depot), ST_Y(depot) FROM crews "
                "WHERE public_id = :c"
            ),
            {"c": crew_id},
        ).one()
    assert tuple(row) == (f"Night crew {tag}", "foot", ["welding", "patrol"], 24.94, 60.17)
    listed = runner.invoke(main, ["crews", "list"])
    assert listed.exit_code == 0, listed.output
    (line,) = [line for line in listed.output.splitlines() if line.startswith(crew_id)]
    assert f"Night crew {tag}" in line and "off_shift" in line and "welding,patrol" in line


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["--mode", "boat"], 1, "mode:"),
        (["--skill", "juggling"], 1, "skills[0]:"),
        (["--depot", "24.94"], 2, "--depot"),
        (["--depot", "200,60"], 1, "depot:"),
        (["--phone", "call me"], 1, "phone:"),
    ],
)
def test_crews_add_refuses_bad_values_and_stores_nothing(
    runner: CliRunner, engine: sa.Engine, tag: str, args: list[str], exit_code: int, message: str
) -> None:
    result = runner.invoke(main, ["crews", "add", f"Bad crew {tag}", *args])
    assert result.exit_code == exit_code
    assert message in result.output
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT count(*) FROM crews WHERE name LIKE :t"), {"t": f"%{tag}%"}
        ).scalar_one()
    assert stored == 0


def test_a_device_added_on_the_command_line_is_known_to_the_gateway(
    runner: CliRunner, engine: sa.Engine, tag: str
) -> None:
    crew_id = add_crew(runner, f"Phone crew {tag}")
    identifier = f"alice-{tag}/phone"
    directory = DatabaseDirectory(engine)
    directory.load()
    assert directory.owntracks_crew(identifier) is None

    result = runner.invoke(
        main,
        ["devices", "add", "--crew", crew_id, "--kind", "owntracks", "--identifier", identifier],
    )
    assert result.exit_code == 0, result.output
    assert crew_id in result.output
    directory.load()
    assert directory.owntracks_crew(identifier) == crew_id
    assert directory.crew_mode(crew_id) == "vehicle"

    other = add_crew(runner, f"Other crew {tag}")
    taken = runner.invoke(
        main,
        ["devices", "add", "--crew", other, "--kind", "owntracks", "--identifier", identifier],
    )
    assert taken.exit_code == 1 and f"bound to {crew_id}" in taken.output
    directory.load()
    assert directory.owntracks_crew(identifier) == crew_id


def test_devices_add_makes_a_login_and_revoke_removes_it(
    runner: CliRunner, engine: sa.Engine, tag: str
) -> None:
    crew_id = add_crew(runner, f"Login crew {tag}")
    added = runner.invoke(main, ["devices", "add", "--crew", crew_id])
    assert added.exit_code == 0, added.output
    name = re.search(r"own device (handheld-[0-9a-f]{8}) reports for", added.output)
    assert name is not None and f"MQTT username: {name[1]}" in added.output
    assert "MQTT password: " in added.output
    directory = DatabaseDirectory(engine)
    directory.load()
    assert directory.handheld_crew(name[1]) == crew_id  # the gateway's check of named fixes
    revoked = runner.invoke(main, ["devices", "revoke", "--crew", crew_id, "--identifier", name[1]])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(main, ["devices", "revoke", "--crew", crew_id, "--identifier", name[1]])
    assert again.exit_code == 1 and "has no own device" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crew", "C-999999", "--identifier", "h1"], "no crew C-999999"),
        (["--kind", "pager", "--identifier", "h1"], "kind:"),
        (["--kind", "owntracks", "--identifier", "alice"], "identifier:"),
    ],
)
def test_devices_add_refuses_what_it_cannot_bind(
    runner: CliRunner, tag: str, args: list[str], message: str
) -> None:
    crew_id = add_crew(runner, f"Refusing crew {tag}")
    crew = [] if "--crew" in args else ["--crew", crew_id]
    result = runner.invoke(main, ["devices", "add", *crew, *args])
    assert result.exit_code == 1 and message in result.output


def test_stations_bind_makes_the_name_known_to_the_gateway(
    runner: CliRunner, engine: sa.Engine, tag: str
) -> None:
    source = f"spb:plant-{tag}/edge-1"
    result = runner.invoke(main, ["stations", "bind", "S-000004", source])
    assert result.exit_code == 0, result.output
    directory = DatabaseDirectory(engine)
    directory.load()
    assert directory.station(source) == "S-000004"
    unknown = runner.invoke(main, ["stations", "bind", "S-999999", f"PS-{tag}"])
    assert unknown.exit_code == 1 and "S-999999" in unknown.output
    bad = runner.invoke(main, ["stations", "bind", "S-000004", f"spb:{tag}"])
    assert bad.exit_code == 1 and "source:" in bad.output
