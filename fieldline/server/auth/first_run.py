"""The first admin: on a database without users, `fieldline serve` and `fieldline demo` make
the user `admin` with a random password and print it once; never again after that."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from fieldline.gis.db import make_engine, make_sessionmaker
from fieldline.server.auth.services import FIRST_ADMIN, ensure_first_admin


def first_admin(database_url: str, echo: Callable[[str], None]) -> str | None:
    """The one-time password when the admin was made now (after telling how to use it)."""
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with make_sessionmaker(engine)() as session:
            password = ensure_first_admin(session)
            session.commit()
    except sa.exc.ProgrammingError:
        echo("No users table yet: run `fieldline db upgrade` to sign in.")
        return None
    finally:
        engine.dispose()
    if password is not None:
        for line in (
            "",
            "=" * 72,
            f"First run: the user {FIRST_ADMIN!r} was made with this one-time password:",
            "",
            f"    {password}",
            "",
            "It is shown only now. Sign in at /login, then change it with",
            f"    fieldline users passwd {FIRST_ADMIN}",
            "=" * 72,
            "",
        ):
            echo(line)
    return password


DEMO_USER = "demo-dispatcher"


def demo_token(database_url: str) -> str:
    """An API token for the demo's simulated call centre and dispatcher (user
    `demo-dispatcher`, made when missing), valid for a day."""
    from datetime import UTC, datetime

    from fieldline.gis.errors import NotFound
    from fieldline.server.auth.services import SYSTEM_ACTOR, create_token, create_user, get_user
    from fieldline.settings import load_settings

    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with make_sessionmaker(engine)() as session:
            try:
                user = get_user(session, DEMO_USER)
            except NotFound:
                user, _password = create_user(session, DEMO_USER, "dispatcher")
            _token, secret = create_token(
                session,
                user,
                "demo simulation",
                datetime.now(UTC),
                load_settings(),
                days=1,
                actor=SYSTEM_ACTOR,
            )
            session.commit()
    finally:
        engine.dispose()
    return secret


DEMO_CREW_USER = "demo-crew"


def demo_crew_login(database_url: str, crew_public_id: str) -> str:
    """A new password for the demo's crew member (user `demo-crew` of the handheld crew, made
    when missing) at each start of `fieldline demo`, so that the crew app can be tried at once."""
    from fieldline.gis.errors import NotFound
    from fieldline.server.auth.passwords import generate_password
    from fieldline.server.auth.services import SYSTEM_ACTOR, create_user, get_user, update_user

    password = generate_password()
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with make_sessionmaker(engine)() as session:
            try:
                get_user(session, DEMO_CREW_USER)
            except NotFound:
                create_user(
                    session,
                    DEMO_CREW_USER,
                    "crew_member",
                    crew_id=crew_public_id,
                    password=password,
                )
            else:
                changes = {"crew_id": crew_public_id, "password": password, "disabled": False}
                update_user(session, DEMO_CREW_USER, changes, actor=SYSTEM_ACTOR)
            session.commit()
    finally:
        engine.dispose()
    return password
