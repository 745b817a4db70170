"""Security headers and session lifetime (issue 12 #14): a CSP on every page, no-store on anything that
may carry PHI, an idle timeout and an absolute session lifetime, the lockout's 429 in the API's error
shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.test_api import API, assert_error, client_for

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.parametrize(
    ("who", "path"),
    [
        (None, "/login/"),
        ("frontdesk", "/calendar/board/"),
        ("therapist", "/calendar/"),
        ("admin", "/admin/"),
        ("admin", "/admin/scheduler/appointment/"),
        ("admin", "/api/v1/docs/"),
        ("therapist", "/integrations/google/"),
    ],
)
def test_every_page_has_a_strict_content_security_policy(
    client, admin_user, frontdesk_user, therapist_a, who, path
):
    users = {"admin": admin_user, "frontdesk": frontdesk_user, "therapist": therapist_a.user}
    if who:
        client.force_login(users[who])
    response = client.get(path, follow=True)
    assert response.status_code == 200, (path, response.status_code)
    policy = _csp(response)
    assert policy["script-src"] == "script-src 'self'"  # no inline scripts, no eval, no other origin
    assert "'unsafe-inline'" not in policy["style-src"]
    if path.startswith("/calendar/"):  # FullCalendar's injected stylesheet takes the page's nonce
        nonce = policy["style-src"].split("'nonce-")[1].split("'")[0]
        assert f'<meta name="csp-nonce" content="{nonce}">' in response.content.decode()
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["object-src"] == "object-src 'none'"
    html = response.content.decode()
    # every <script> on the page loads a file (or is JSON data, which CSP does not run)
    import re

    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, (path, tag)


def test_api_responses_and_signed_in_pages_are_not_stored(client, frontdesk_user):
    desk = client_for(frontdesk_user)
    assert "no-store" in desk.get(f"{API}/appointments/")["Cache-Control"]
    assert "no-store" in APIClient().get(f"{API}/appointments/")["Cache-Control"]  # errors too
    client.force_login(frontdesk_user)
    for path in ("/calendar/board/", "/admin/"):
        assert "no-store" in client.get(path)["Cache-Control"], path


def _signed_in(client, user):
    client.post("/login/", {"username": user.username, "password": "pw-desk-123"})
    assert client.get(f"{API}/therapists/").status_code == 200


def test_an_idle_session_ends_after_30_minutes(client, frontdesk_user):
    with time_machine.travel(T0, tick=False):
        _signed_in(client, frontdesk_user)
    with time_machine.travel(T0 + timedelta(minutes=29), tick=False):
        assert client.get(f"{API}/therapists/").status_code == 200  # still in, and the idle clock restarts
    with time_machine.travel(T0 + timedelta(minutes=58), tick=False):
        assert client.get(f"{API}/therapists/").status_code == 200
    with time_machine.travel(T0 + timedelta(minutes=90), tick=False):
        assert_error(client.get(f"{API}/therapists/"), 401, "not_authenticated")
        page = client.get("/calendar/board/")
        assert page.status_code == 302 and page["Location"].startswith("/login/")


def test_an_active_session_still_ends_8_hours_after_sign_in(client, frontdesk_user):
    with time_machine.travel(T0, tick=False):
        _signed_in(client, frontdesk_user)
    for minutes in range(20, 8 * 60, 20):  # busy all day, never idle
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            assert client.get(f"{API}/therapists/").status_code == 200, minutes
    with time_machine.travel(T0 + timedelta(hours=8, minutes=1), tick=False):
        assert_error(client.get(f"{API}/therapists/"), 401, "not_authenticated")


def test_the_lockout_on_the_api_is_a_429_in_the_error_shape(frontdesk_user, settings):
    anon = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        anon.post(f"{API}/auth/token/", {"username": "fran", "password": "wrong"}, format="json")
    locked = anon.post(f"{API}/auth/token/", {"username": "fran", "password": "pw-desk-123"}, format="json")
    assert_error(locked, 429, "locked_out")
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    page = APIClient().post("/login/", {"username": "fran", "password": "pw-desk-123"})
    assert page.status_code == 429 and "Too many failed sign-in attempts" in page.content.decode()
