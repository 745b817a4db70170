"""The connect flow over real HTTP: the hub's views, the emulator's consent page and token endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from audit.models import AuditLog
from integrations.google.services import google_channels_renew
from integrations.models import APIWriteQueue, Connection
from integrations.services import connection_sync
from scheduler.services import appointment_book

from .conftest import ACCOUNT, soon


def consent(google, location: str, *, decision: str = "allow", account: str = ACCOUNT) -> str:
    """Play the user on the emulator's consent page; returns the hub callback path with its query."""
    url = urlparse(location)
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    page = requests.get(location, timeout=5)
    assert page.status_code == 200 and account in page.text
    answer = requests.post(
        f"{google.url}{url.path}",
        data={**params, "account": account, "decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    back = urlparse(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def connect_through_google(client, google, query: str = "", account: str = ACCOUNT) -> Connection:
    start = client.get(f"/integrations/google/connect/{query}")
    assert start.status_code == 302 and start["Location"].startswith(google.url + "/o/oauth2/v2/auth?")
    sent = parse_qs(urlparse(start["Location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["access_type"] == ["offline"]
    back = client.get(consent(google, start["Location"], account=account))
    assert back.status_code == 302
    return back


@pytest.fixture
def thea(client, therapist_a):
    client.force_login(therapist_a.user)
    return client


def test_a_therapist_connects_chooses_a_calendar_and_gets_a_push_channel(google, thea, therapist_a):
    upcoming = appointment_book(
        actor=None, therapist=therapist_a, start=soon(2), end=soon(2) + timedelta(minutes=50)
    )
    back = connect_through_google(thea, google)
    assert back["Location"] == "/integrations/google/calendar/"
    connection = Connection.objects.get(platform="google", therapist=therapist_a)
    assert connection.credentials["refresh_token"].startswith("1//") and connection.write_enabled
    page = thea.get("/integrations/google/calendar/")
    assert ACCOUNT in page.content.decode()
    chosen = thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    assert chosen.status_code == 302
    connection.refresh_from_db()
    channel = connection.config["channel"]
    assert channel["id"] in google.channels and google.channels[channel["id"]]["address"] == (
        "http://hub.example/webhooks/google/"
    )
    assert google.channels[channel["id"]]["token"] == connection.credentials["channel_token"]
    assert connection_sync(connection_id=connection.pk).status == "ok"
    # The therapist's upcoming appointments are queued for the new calendar, once.
    assert list(
        APIWriteQueue.objects.filter(connection=connection).values_list("appointment", "operation")
    ) == [(upcoming.pk, "create")]
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {
        "integrations.connection.google_connected",
        "integrations.connection.google_channel_started",
    } <= actions
    assert "Connected" in thea.get("/integrations/google/").content.decode()


def test_a_forged_or_replayed_state_is_refused(google, thea):
    start = thea.get("/integrations/google/connect/")
    path = consent(google, start["Location"])
    forged = path.replace("state=", "state=x")
    assert thea.get(forged).status_code == 400
    assert thea.get(path).status_code == 400  # the state was spent by the refused attempt
    assert not Connection.objects.filter(platform="google").exists()


def test_a_denied_consent_connects_nothing(google, thea):
    start = thea.get("/integrations/google/connect/")
    back = thea.get(consent(google, start["Location"], decision="deny"))
    assert back.status_code == 302 and not Connection.objects.filter(platform="google").exists()


def test_needs_reauth_is_visible_and_a_reconnect_resumes_the_same_connection(google, thea, therapist_a):
    connect_through_google(thea, google)
    thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    connection = Connection.objects.get(platform="google")
    connection_sync(connection_id=connection.pk)
    google.revoke()
    connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.status == "needs_reauth"
    assert "Reconnect Google Calendar" in thea.get("/integrations/google/").content.decode()
    old_channel = connection.config["channel"]["id"]
    back = connect_through_google(thea, google)
    assert back["Location"] == "/integrations/google/"  # same calendar: straight back, no second choice
    assert Connection.objects.filter(platform="google").count() == 1
    connection.refresh_from_db()
    assert connection.status == "ok" and connection.cursor  # the sync token survives: no re-import
    assert connection.config["channel"]["id"] != old_channel
    assert connection_sync(connection_id=connection.pk).status == "ok"


def test_an_admin_connects_on_a_therapists_behalf_and_others_cannot(
    google, client, admin_user, therapist_a, therapist_b
):
    client.force_login(therapist_b.user)
    assert client.get(f"/integrations/google/connect/?therapist={therapist_a.pk}").status_code == 404
    client.force_login(admin_user)
    connect_through_google(client, google, f"?therapist={therapist_a.pk}")
    assert Connection.objects.get(platform="google").therapist == therapist_a


def test_disconnect_stops_the_channel_revokes_and_deletes_the_tokens(google, thea):
    connect_through_google(thea, google)
    thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    connection = Connection.objects.get(platform="google")
    refresh_token = connection.credentials["refresh_token"]
    assert thea.get("/integrations/google/disconnect/").status_code == 405
    assert thea.post("/integrations/google/disconnect/").status_code == 302
    connection.refresh_from_db()
    assert connection.credentials is None and connection.status == "paused" and not connection.write_enabled
    assert google.channels == {}
    refused = requests.post(
        f"{google.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=5,
    )
    assert refused.json()["error"] == "invalid_grant"
    assert AuditLog.objects.filter(action="integrations.connection.google_disconnected").exists()


def test_channels_close_to_expiry_are_renewed_and_the_old_one_stopped(google, thea):
    connect_through_google(thea, google)
    thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    connection = Connection.objects.get(platform="google")
    assert google_channels_renew() == []  # a week left: nothing to do
    old = connection.config["channel"]
    soon = int((datetime.now(UTC) + timedelta(hours=2)).timestamp() * 1000)
    connection.config["channel"]["expiration"] = soon
    connection.save()
    assert google_channels_renew() == [connection.pk]
    connection.refresh_from_db()
    assert connection.config["channel"]["id"] != old["id"] and list(google.channels) == [
        connection.config["channel"]["id"]
    ]


OTHER = "theo@example.test"


def test_a_consent_for_another_account_starts_a_clean_connection_and_retires_the_old_one(google, thea):
    """Issue 12 #16: a new consent never inherits another account's settings, ledger or channel."""
    connect_through_google(thea, google)
    thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    old = Connection.objects.get(platform="google")
    old.config = {**old.config, "window_past_days": 7, "window_future_days": 30}
    old.display_name = "Google Calendar: demo (emulator)"
    old.save()
    connection_sync(connection_id=old.pk)
    old_token = old.credentials["channel_token"]
    back = connect_through_google(thea, google, account=OTHER)
    assert back["Location"] == "/integrations/google/calendar/"  # a calendar choice, not a reconnect
    new = Connection.objects.filter(platform="google").latest("created")
    assert new.pk != old.pk and not new.cursor and not new.records.exists()
    assert new.config == {"account": OTHER} and "(emulator)" not in new.display_name
    assert "calendar_id" not in new.credentials and "channel_token" not in new.credentials
    old.refresh_from_db()
    assert (old.status, old.credentials, old.write_enabled) == ("paused", None, False)
    assert [c["calendar"] for c in google.channels.values()] == []  # the old account's channel stopped
    thea.post("/integrations/google/calendar/", {"calendar_id": OTHER})
    new.refresh_from_db()
    assert new.credentials["channel_token"] != old_token
    assert connection_sync(connection_id=new.pk).status == "ok"
    assert "Disconnect" in thea.get("/integrations/google/").content.decode()


def test_a_consent_after_a_disconnect_starts_clean_even_for_the_same_account(google, thea):
    connect_through_google(thea, google)
    thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    old = Connection.objects.get(platform="google")
    connection_sync(connection_id=old.pk)
    thea.post("/integrations/google/disconnect/")
    back = connect_through_google(thea, google)
    assert back["Location"] == "/integrations/google/calendar/"
    new = Connection.objects.filter(platform="google").latest("created")
    assert new.pk != old.pk and not new.cursor and new.config == {"account": ACCOUNT}


def test_every_channel_gets_its_own_random_token(google, thea):
    connect_through_google(thea, google)
    thea.post("/integrations/google/calendar/", {"calendar_id": ACCOUNT})
    connection = Connection.objects.get(platform="google")
    first = connection.credentials["channel_token"]
    google_channels_renew(before=timedelta(days=30))
    connection.refresh_from_db()
    assert connection.credentials["channel_token"] != first and len(first) >= 40
    (channel,) = google.channels.values()
    assert channel["token"] == connection.credentials["channel_token"]


def test_after_seed_demo_a_real_consent_does_not_get_the_demo_connection_back(google, client, db):
    """Issue 12 #16's reproduction: the seeded demo connection's window, name, calendar and channel token
    stay with the demo account; the therapist's real account starts clean."""
    from datetime import date

    from scheduler.demo import demo_seed
    from scheduler.models import Therapist

    demo_seed(today=date(2026, 11, 23))
    maya = Therapist.objects.get(email="maya.okafor@demo.clinic")
    demo = Connection.objects.get(platform="google", therapist=maya)
    client.force_login(maya.user)
    back = connect_through_google(client, google)
    assert back["Location"] == "/integrations/google/calendar/"
    real = Connection.objects.filter(platform="google", therapist=maya).latest("created")
    assert real.pk != demo.pk and real.config == {"account": ACCOUNT}
    assert "(emulator)" not in real.display_name and "channel_token" not in real.credentials
