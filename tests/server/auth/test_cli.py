"""`fieldline users ...` and `fieldline tokens ...` as an operator runs them against the test
database (they commit: what they make is removed afterwards)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from fieldline.cli import main
from fieldline.gis.db import make_sessionmaker
from fieldline.server.auth import passwords, services
from fieldline.server.crews.services import create_crew


@pytest.fixture
def tag(engine: sa.Engine) -> Iterator[str]:
    tag = uuid.uuid4().hex[:8]
    yield tag
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM users WHERE username LIKE :t"), {"t": f"%{tag}%"})
        connection.execute(sa.text("DELETE FROM crews WHERE name LIKE :t"), {"t": f"%{tag}%"})
        connection.execute(
            sa.text("DELETE FROM security_events WHERE subject LIKE :t"), {"t": f"%{tag}%"}
        )


@pytest.fixture
def runner(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FIELDLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return CliRunner()


def test_users_add_list_passwd_and_disable(runner: CliRunner, engine: sa.Engine, tag: str) -> None:
    name = f"ops-{tag}"
    added = runner.invoke(main, ["users", "add", name, "--role", "dispatcher"])
    assert added.exit_code == 0, added.output
    generated = re.search(r"password \(shown only now\): (\S+)", added.output)
    assert generated is not None
    with make_sessionmaker(engine)() as session:
        user = services.get_user(session, name)
        assert passwords.verify_password(user.password_hash, generated.group(1))

    listed = runner.invoke(main, ["users", "list"])
    assert re.search(rf"^{name}\s+dispatcher\s+-\s+active", listed.output, re.M), listed.output

    changed = runner.invoke(
        main, ["users", "passwd", name, "--password-stdin"], input="a new long password\n"
    )
    assert changed.exit_code == 0, changed.output
    disabled = runner.invoke(main, ["users", "disable", name])
    assert disabled.exit_code == 0
    with make_sessionmaker(engine)() as session:
        user = services.get_user(session, name)
        assert passwords.verify_password(user.password_hash, "a new long password")
        assert user.disabled
        kinds = [
            e.kind
            for e in services.list_events(session, services.EventQuery())
            if e.subject == name
        ]
        assert kinds == ["user_changed", "password_changed", "user_created"]


def test_users_add_a_crew_member_with_its_crew(
    runner: CliRunner, engine: sa.Engine, tag: str
) -> None:
    with make_sessionmaker(engine)() as session:
        crew = create_crew(session, f"Crew {tag}")
        session.commit()
    refused = runner.invoke(main, ["users", "add", f"c-{tag}", "--role", "crew_member"])
    assert refused.exit_code != 0 and "crew_id" in refused.output
    added = runner.invoke(
        main,
        [
            "users",
            "add",
            f"c-{tag}",
            "--role",
            "crew_member",
            "--crew",
            crew.public_id,
            "--password-stdin",
        ],
        input="crew password 123\n",
    )
    assert added.exit_code == 0, added.output
    assert "shown only now" not in added.output


def test_tokens_create_and_revoke(runner: CliRunner, engine: sa.Engine, tag: str) -> None:
    name = f"prog-{tag}"
    assert runner.invoke(main, ["users", "add", name, "--role", "integration"]).exit_code == 0
    made = runner.invoke(
        main, ["tokens", "create", "--user", name, "--name", "sync", "--days", "7"]
    )
    assert made.exit_code == 0, made.output
    token_id = re.search(r"token (\d+) for", made.output)
    secret = re.search(r"secret \(shown only now\): (\S+)", made.output)
    assert token_id and secret
    with make_sessionmaker(engine)() as session:
        assert services.token_user(session, secret.group(1), datetime.now(UTC)) is not None
    revoked = runner.invoke(main, ["tokens", "revoke", token_id.group(1)])
    assert revoked.exit_code == 0, revoked.output
    with make_sessionmaker(engine)() as session:
        assert services.token_user(session, secret.group(1), datetime.now(UTC)) is None
    too_long = runner.invoke(
        main, ["tokens", "create", "--user", name, "--name", "x", "--days", "99999"]
    )
    assert too_long.exit_code != 0 and "days" in too_long.output
