"""Signing in through the login page in a real browser: the map sends a browser that is not
signed in to the login page, which brings it back to the map; the map's unsafe requests carry
the CSRF token (signing out is one), and signing out ends the session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from fieldline.gis.db import make_sessionmaker
from fieldline.server.auth.services import create_user
from fieldline.settings import Settings
from tests.browser.conftest import serving
from tests.browser.test_map import DRAWN, WAIT_MS

pytestmark = pytest.mark.timeout(120)
PASSWORD = "a dispatcher's passphrase"


@pytest.fixture(scope="module")
def locked_url(browser_settings: Settings) -> Iterator[str]:
    with serving(browser_settings.model_copy(update={"anonymous_role": ""}), "locked") as url:
        yield url


@pytest.fixture
def dispatcher(browser_engine: sa.Engine) -> Iterator[str]:
    name = f"disp-{uuid.uuid4().hex[:8]}"
    with make_sessionmaker(browser_engine)() as session:
        create_user(session, name, "dispatcher", password=PASSWORD)
        session.commit()
    yield name
    with browser_engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM users WHERE username = :n"), {"n": name})


def test_signing_in_on_the_login_page_opens_the_map(
    page: Page, locked_url: str, dispatcher: str, console_errors: list[str]
) -> None:
    page.goto(locked_url + "/map")
    expect(page).to_have_url(locked_url + "/login?next=%2Fmap")
    page.get_by_label("User name").fill(dispatcher)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong user name or password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(locked_url + "/map")
    page.wait_for_function(DRAWN, arg="pipes", timeout=WAIT_MS)

    # Without the token the session's unsafe request is refused; the page's own helper sends it.
    refused = page.evaluate("fetch('/api/v1/auth/logout', {method: 'POST'}).then((r) => r.status)")
    assert refused == 403
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(locked_url + "/login")
    assert page.request.get(locked_url + "/api/v1/auth/me").status == 401
    # The wrong password's page (401) and the refused request (403) are the only failures.
    unexpected = [
        e for e in console_errors if "status of 401" not in e and "status of 403" not in e
    ]
    assert unexpected == []
