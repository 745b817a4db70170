"""A served Google Calendar emulator with the hub's settings pointed at it, and a connected therapist."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from integrations.google.emulator import GoogleCalendarEmulator, serve
from integrations.models import Connection

ACCOUNT = "thea@example.test"


@contextmanager
def served_google(settings) -> Iterator[GoogleCalendarEmulator]:
    """A served emulator with the hub's Google settings pointed at it (also used by the browser tests)."""
    emulator = GoogleCalendarEmulator({"accounts": {ACCOUNT: {}, "theo@example.test": {}}})
    server, url = serve(emulator)
    emulator.url = url
    settings.GOOGLE_CALENDAR_API_ENDPOINT = f"{url}/calendar/v3/"
    settings.GOOGLE_OAUTH_AUTH_URI = f"{url}/o/oauth2/v2/auth"
    settings.GOOGLE_OAUTH_TOKEN_URI = f"{url}/token"
    settings.GOOGLE_OAUTH_REVOKE_URI = f"{url}/revoke"
    settings.GOOGLE_OAUTH_CLIENT_ID = emulator.client_id
    settings.GOOGLE_OAUTH_CLIENT_SECRET = emulator.client_secret
    settings.HUB_BASE_URL = "http://hub.example"
    try:
        yield emulator
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()


@pytest.fixture
def google(settings):
    with served_google(settings) as emulator:
        yield emulator


@pytest.fixture
def connection(google, therapist_a):
    tokens = google.issue_tokens(ACCOUNT)
    return Connection.objects.create(
        platform="google",
        therapist=therapist_a,
        display_name=f"Google Calendar: {ACCOUNT}",
        credentials={
            "refresh_token": tokens["refresh_token"],
            "access_token": tokens["access_token"],
            "token_expiry": (datetime.now(UTC) + timedelta(seconds=tokens["expires_in"])).isoformat(),
            "calendar_id": ACCOUNT,
            "channel_token": "chan-secret",
        },
        config={"channel": {"id": "chan-1", "resource_id": "res-1", "expiration": 0}},
        write_enabled=True,
    )


def timed(start: datetime, minutes: int = 60, **fields):
    return {
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()},
        "summary": "Dentist (private)",
        **fields,
    }


def soon(days: int, hour: int = 15) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (now + timedelta(days=days)).replace(hour=hour)
