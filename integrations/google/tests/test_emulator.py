"""The emulator's own documented behaviour, through the real client library (google-api-python-client and
google-auth) over HTTP, plus plain requests for the OAuth pages and push notifications."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from integrations.google.emulator import GoogleCalendarEmulator, pkce_challenge, serve

ACCOUNT = "therapist@example.com"


def event(start: str, end: str, **fields):
    return {"start": {"dateTime": start}, "end": {"dateTime": end}, "summary": "Busy", **fields}


@pytest.fixture
def emulator():
    return GoogleCalendarEmulator({"accounts": {ACCOUNT: {}}})


@pytest.fixture
def served(emulator):
    server, url = serve(emulator)
    yield url
    server.shutdown()
    server.server_close()
    emulator.close()


def client(emulator, url, tokens=None):
    tokens = tokens or emulator.issue_tokens(ACCOUNT)
    credentials = Credentials(
        token=tokens["access_token"],
        refresh_token=tokens.get("refresh_token"),
        token_uri=f"{url}/token",
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
    )
    return build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": f"{url}/calendar/v3/"},
    )


def test_the_client_library_reaches_the_real_paths_under_calendar_v3(emulator, served):
    api = client(emulator, served)
    calendars = api.calendarList().list().execute()
    assert [c["id"] for c in calendars["items"]] == [ACCOUNT] and calendars["items"][0]["primary"]
    created = (
        api.events()
        .insert(calendarId="primary", body=event("2025-03-04T10:00:00-05:00", "2025-03-04T11:00:00-05:00"))
        .execute()
    )
    assert created["status"] == "confirmed" and created["kind"] == "calendar#event"
    assert (
        emulator.requests[-1][1] == f"/calendar/v3/calendars/{ACCOUNT}/events"
        or emulator.requests[-1][1] == "/calendar/v3/calendars/primary/events"
    )


def test_pages_can_be_short_or_empty_and_only_the_last_carries_the_sync_token(emulator, served):
    emulator.page_sizes = [0, 2, 1]
    for n in range(5):
        emulator.add_event(ACCOUNT, event(f"2025-03-0{n + 1}T10:00:00Z", f"2025-03-0{n + 1}T11:00:00Z"))
    api = client(emulator, served)
    pages, token = [], None
    while True:
        page = api.events().list(calendarId="primary", singleEvents=True, pageToken=token).execute()
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            break
        assert "nextSyncToken" not in page
    assert [len(p["items"]) for p in pages] == [0, 2, 1, 0, 2]
    assert pages[-1]["nextSyncToken"]


def test_incremental_sync_returns_only_changes_including_deletions_with_only_an_id(emulator, served):
    kept = emulator.add_event(ACCOUNT, event("2025-03-04T10:00:00Z", "2025-03-04T11:00:00Z"))
    gone = emulator.add_event(ACCOUNT, event("2025-03-05T10:00:00Z", "2025-03-05T11:00:00Z"))
    api = client(emulator, served)
    full = api.events().list(calendarId="primary", singleEvents=True).execute()
    assert {e["id"] for e in full["items"]} == {kept["id"], gone["id"]}
    emulator.delete_event(ACCOUNT, gone["id"])
    changes = (
        api.events().list(calendarId="primary", singleEvents=True, syncToken=full["nextSyncToken"]).execute()
    )
    assert changes["items"] == [
        {
            "kind": "calendar#event",
            "etag": changes["items"][0]["etag"],
            "id": gone["id"],
            "status": "cancelled",
        }
    ]
    again = (
        api.events()
        .list(calendarId="primary", singleEvents=True, syncToken=changes["nextSyncToken"])
        .execute()
    )
    assert again["items"] == []
    # Outside an incremental sync, cancelled events show only when asked for.
    listed = api.events().list(calendarId="primary").execute()
    assert [e["id"] for e in listed["items"]] == [kept["id"]]
    assert gone["id"] in {
        e["id"] for e in api.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    }
    assert api.events().get(calendarId="primary", eventId=gone["id"]).execute()["status"] == "cancelled"


@pytest.mark.parametrize(
    "restriction",
    [
        {"timeMin": "2025-01-01T00:00:00Z"},
        {"q": "x"},
        {"privateExtendedProperty": "a=b"},
        {"showDeleted": False},
        {"orderBy": "updated"},
    ],
)
def test_a_sync_token_with_other_restrictions_is_a_400(emulator, served, restriction):
    api = client(emulator, served)
    token = api.events().list(calendarId="primary").execute()["nextSyncToken"]
    with pytest.raises(HttpError) as exc:
        api.events().list(calendarId="primary", syncToken=token, **restriction).execute()
    assert exc.value.status_code == 400
    assert "Sync token cannot be used with other request restrictions" in exc.value.reason


def test_an_expired_sync_token_is_410_full_sync_required(emulator, served):
    api = client(emulator, served)
    token = api.events().list(calendarId="primary").execute()["nextSyncToken"]
    emulator.set_fault("expire_sync_tokens")
    with pytest.raises(HttpError) as exc:
        api.events().list(calendarId="primary", syncToken=token).execute()
    assert exc.value.status_code == 410 and exc.value.error_details[0]["reason"] == "fullSyncRequired"
    fresh = api.events().list(calendarId="primary").execute()["nextSyncToken"]
    assert api.events().list(calendarId="primary", syncToken=fresh).execute()["items"] == []


def test_time_bounds_are_exclusive_on_end_and_start_and_an_empty_range_is_refused(emulator, served):
    e = emulator.add_event(ACCOUNT, event("2025-03-04T10:00:00Z", "2025-03-04T11:00:00Z"))
    api = client(emulator, served)

    def ids(lo, hi):
        return [
            x["id"]
            for x in api.events().list(calendarId="primary", timeMin=lo, timeMax=hi).execute()["items"]
        ]

    assert ids("2025-03-04T11:00:00Z", "2025-03-05T00:00:00Z") == []  # ends exactly at timeMin
    assert ids("2025-03-04T00:00:00Z", "2025-03-04T10:00:00Z") == []  # starts exactly at timeMax
    assert ids("2025-03-04T05:30:00-05:00", "2025-03-04T10:45:00Z") == [e["id"]]
    with pytest.raises(HttpError) as exc:
        ids("2025-03-05T00:00:00Z", "2025-03-04T00:00:00Z")
    assert exc.value.status_code == 400 and exc.value.error_details[0]["reason"] == "timeRangeEmpty"


def test_a_duplicate_id_is_409_even_after_deletion_and_a_bad_id_is_400(emulator, served):
    api = client(emulator, served)
    body = event("2025-03-04T10:00:00Z", "2025-03-04T11:00:00Z", id="abcdefv0123")
    api.events().insert(calendarId="primary", body=body).execute()
    with pytest.raises(HttpError) as exc:
        api.events().insert(calendarId="primary", body=body).execute()
    assert exc.value.status_code == 409 and exc.value.error_details[0]["reason"] == "duplicate"
    api.events().delete(calendarId="primary", eventId="abcdefv0123").execute()
    with pytest.raises(HttpError) as exc:
        api.events().insert(calendarId="primary", body=body).execute()
    assert exc.value.status_code == 409
    restored = (
        api.events()
        .patch(calendarId="primary", eventId="abcdefv0123", body={"status": "confirmed"})
        .execute()
    )
    assert restored["status"] == "confirmed"
    with pytest.raises(HttpError) as exc:
        api.events().insert(calendarId="primary", body={**body, "id": "UPPER-case"}).execute()
    assert exc.value.status_code == 400


def test_patch_merges_and_update_replaces(emulator, served):
    api = client(emulator, served)
    body = event(
        "2025-03-04T10:00:00Z",
        "2025-03-04T11:00:00Z",
        id="evt00001",
        extendedProperties={"private": {"hubAppointmentId": "u1"}},
    )
    api.events().insert(calendarId="primary", body=body).execute()
    patched = (
        api.events()
        .patch(calendarId="primary", eventId="evt00001", body={"start": {"dateTime": "2025-03-04T09:00:00Z"}})
        .execute()
    )
    assert patched["start"]["dateTime"] == "2025-03-04T09:00:00Z" and patched["summary"] == "Busy"
    assert patched["extendedProperties"]["private"]["hubAppointmentId"] == "u1"
    replaced = (
        api.events()
        .update(
            calendarId="primary",
            eventId="evt00001",
            body=event("2025-03-04T12:00:00Z", "2025-03-04T13:00:00Z"),
        )
        .execute()
    )
    assert "extendedProperties" not in replaced and replaced["id"] == "evt00001"
    found = api.events().list(calendarId="primary", privateExtendedProperty="hubAppointmentId=u1").execute()
    assert found["items"] == []


def test_recurring_events_arrive_as_instances_and_a_cancelled_instance_keeps_the_rest(emulator, served):
    instances = emulator.add_recurring(
        ACCOUNT,
        {**event("2025-03-04T10:00:00-05:00", "2025-03-04T11:00:00-05:00"), "id": "series01"},
        count=3,
    )
    api = client(emulator, served)
    full = api.events().list(calendarId="primary", singleEvents=True).execute()
    assert sorted(e["id"] for e in full["items"]) == sorted(i["id"] for i in instances)
    assert instances[1]["id"] == "series01_20250311T150000Z"
    assert [e["id"] for e in api.events().list(calendarId="primary").execute()["items"]] == ["series01"]
    emulator.delete_event(ACCOUNT, instances[1]["id"])
    changes = (
        api.events().list(calendarId="primary", singleEvents=True, syncToken=full["nextSyncToken"]).execute()
    )
    assert changes["items"][0]["status"] == "cancelled"
    assert (
        changes["items"][0]["recurringEventId"] == "series01" and "originalStartTime" in changes["items"][0]
    )


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        ({"reason": "rateLimitExceeded"}, 403, "rateLimitExceeded"),
        ({"reason": "userRateLimitExceeded"}, 403, "userRateLimitExceeded"),
        ({"status": 429}, 429, "rateLimitExceeded"),
    ],
)
def test_rate_limits_use_googles_error_shape(emulator, served, fault, status, reason):
    api = client(emulator, served)
    emulator.set_fault("rate_limit", retry_after=7, **fault)
    response = requests.get(
        f"{served}/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {emulator.issue_tokens(ACCOUNT)['access_token']}"},
        timeout=5,
    )
    assert response.status_code == status and response.headers["Retry-After"] == "7"
    error = response.json()["error"]
    assert error["code"] == status and error["errors"][0] == {
        "domain": "usageLimits",
        "reason": reason,
        "message": error["message"],
    }
    assert api.events().list(calendarId="primary").execute()["kind"] == "calendar#events"


def test_an_expired_access_token_is_refreshed_and_a_revoked_one_cannot_be(emulator, served):
    tokens = emulator.issue_tokens(ACCOUNT)
    api = client(emulator, served, tokens)
    emulator.set_fault("expire_access_tokens")
    assert api.events().list(calendarId="primary").execute()["kind"] == "calendar#events"  # refreshed
    emulator.revoke(tokens["refresh_token"])
    with pytest.raises(RefreshError, match="invalid_grant"):
        api.events().list(calendarId="primary").execute()


def test_the_consent_flow_with_pkce_issues_a_refresh_token(emulator, served):
    verifier = "v" * 50
    redirect = "http://hub.example/integrations/google/callback/"
    params = {
        "client_id": emulator.client_id,
        "redirect_uri": redirect,
        "response_type": "code",
        "scope": "https://www.googleapis.com/auth/calendar.events",
        "state": "st4te",
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
        "access_type": "offline",
    }
    page = requests.get(f"{served}/o/oauth2/v2/auth", params=params, timeout=5)
    assert page.status_code == 200 and ACCOUNT in page.text
    approved = requests.post(
        f"{served}/o/oauth2/v2/auth",
        data={**params, "account": ACCOUNT, "decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    location = urlparse(approved.headers["Location"])
    query = parse_qs(location.query)
    assert approved.status_code == 302 and location.path == "/integrations/google/callback/"
    assert query["state"] == ["st4te"]
    form = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": redirect,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    wrong = requests.post(f"{served}/token", data={**form, "code_verifier": "w" * 50}, timeout=5)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The code was spent by the failed attempt: a code is single use.
    again = requests.post(f"{served}/token", data={**form, "code_verifier": verifier}, timeout=5)
    assert again.status_code == 400
    approved = requests.post(
        f"{served}/o/oauth2/v2/auth",
        data={**params, "account": ACCOUNT, "decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    form["code"] = parse_qs(urlparse(approved.headers["Location"]).query)["code"][0]
    tokens = requests.post(f"{served}/token", data={**form, "code_verifier": verifier}, timeout=5).json()
    assert tokens["refresh_token"] and tokens["token_type"] == "Bearer"
    assert client(emulator, served, tokens).calendarList().list().execute()["items"][0]["id"] == ACCOUNT
    denied = requests.post(
        f"{served}/o/oauth2/v2/auth", data={**params, "decision": "deny"}, allow_redirects=False, timeout=5
    )
    assert parse_qs(urlparse(denied.headers["Location"]).query) == {
        "error": ["access_denied"],
        "state": ["st4te"],
    }


@pytest.fixture
def receiver():
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            received.append({**dict(self.headers.items()), "_body": self.rfile.read(length).decode()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/webhooks/google/", received
    server.shutdown()
    server.server_close()


def test_watch_sends_sync_then_exists_with_the_real_headers_until_stopped(emulator, served, receiver):
    address, received = receiver
    api = client(emulator, served)
    channel = (
        api.events()
        .watch(
            calendarId="primary",
            body={"id": "chan-1", "type": "web_hook", "address": address, "token": "s3cret"},
        )
        .execute()
    )
    assert channel["kind"] == "api#channel" and channel["resourceId"] and int(channel["expiration"]) > 0
    emulator.add_event(ACCOUNT, event("2025-03-04T10:00:00Z", "2025-03-04T11:00:00Z"))
    emulator.wait_notifications()
    assert [r["X-Goog-Resource-State"] for r in received] == ["sync", "exists"]
    assert [r["X-Goog-Message-Number"] for r in received] == ["1", "2"]
    first = received[0]
    assert first["X-Goog-Channel-ID"] == "chan-1" and first["X-Goog-Channel-Token"] == "s3cret"
    assert first["X-Goog-Resource-ID"] == channel["resourceId"]
    assert first["X-Goog-Resource-URI"].startswith(f"{served}/calendar/v3/calendars/")
    assert first["X-Goog-Channel-Expiration"].endswith("GMT") and first["_body"] == ""
    with pytest.raises(HttpError) as exc:
        api.channels().stop(body={"id": "chan-1", "resourceId": "wrong"}).execute()
    assert exc.value.status_code == 404
    api.channels().stop(body={"id": "chan-1", "resourceId": channel["resourceId"]}).execute()
    emulator.add_event(ACCOUNT, event("2025-03-05T10:00:00Z", "2025-03-05T11:00:00Z"))
    emulator.wait_notifications()
    assert len(received) == 2


def test_freebusy_reports_opaque_events_only(emulator, served):
    emulator.add_event(ACCOUNT, event("2025-03-04T10:00:00Z", "2025-03-04T11:00:00Z"))
    emulator.add_event(
        ACCOUNT, event("2025-03-04T12:00:00Z", "2025-03-04T13:00:00Z", transparency="transparent")
    )
    api = client(emulator, served)
    answer = (
        api.freebusy()
        .query(
            body={
                "timeMin": "2025-03-04T00:00:00Z",
                "timeMax": "2025-03-05T00:00:00Z",
                "items": [{"id": "primary"}],
            }
        )
        .execute()
    )
    assert answer["calendars"]["primary"]["busy"] == [
        {"start": "2025-03-04T10:00:00.000Z", "end": "2025-03-04T11:00:00.000Z"}
    ]


def test_the_revoke_tokens_fault_gives_401_and_then_invalid_grant(emulator, served):
    api = client(emulator, served)
    emulator.set_fault("revoke_tokens")
    with pytest.raises(RefreshError, match="invalid_grant"):
        api.events().list(calendarId="primary").execute()  # 401, then the refresh is refused


def test_a_server_error_fault_is_a_5xx_in_googles_shape(emulator, served):
    token = emulator.issue_tokens(ACCOUNT)["access_token"]
    emulator.set_fault("server_error", status=503, after=1)
    url = f"{served}/calendar/v3/calendars/primary/events"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    failed = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert failed.status_code == 503 and failed.json()["error"]["errors"][0]["reason"] == "backendError"
