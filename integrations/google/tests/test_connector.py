"""The connector's contract, through google-api-python-client over real HTTP against the emulator."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import RequestFactory

from integrations.base import ConnectorAuthError, ConnectorError, CursorExpired
from integrations.google.connector import GoogleCalendarConnector, event_id_for
from integrations.models import APIWriteQueue

from .conftest import ACCOUNT, soon, timed


def window():
    return soon(-30), soon(180)


def test_event_ids_are_base32hex_of_the_appointment_uuid():
    uid = uuid.UUID("5b0e3c1a-9f2d-4c7e-8a1b-2c3d4e5f6a7b")
    event_id = event_id_for(uid)
    assert len(event_id) == 26 and set(event_id) <= set("0123456789abcdefghijklmnopqrstuv")
    assert event_id == event_id_for(str(uid)) and event_id != event_id_for(uuid.uuid4())


def test_first_sync_reads_every_page_and_keeps_only_the_last_pages_sync_token(google, connection):
    google.page_sizes = [0, 3, 1]
    for n in range(7):
        google.add_event(ACCOUNT, timed(soon(1 + n)))
    result = GoogleCalendarConnector(connection).fetch(cursor=None, window=window())
    assert len(result.events) == 7 and result.cursor and result.cursor.startswith("sync_")
    assert result.complete_window == window()
    queries = google.api_requests("/events")
    assert len(queries) == 5 and all(q["singleEvents"] == "true" for q in queries)
    assert "pageToken" not in queries[0] and all(q.get("pageToken") for q in queries[1:])


def test_other_peoples_events_become_busy_time_without_any_detail(google, connection):
    google.add_event(ACCOUNT, timed(soon(1), attendees=[{"email": "client@example.net"}], location="Room 2"))
    (event,) = GoogleCalendarConnector(connection).fetch(cursor=None, window=window()).events
    assert event.busy_only and not event.deleted and not event.hub_uid
    assert event.end - event.start == timedelta(hours=1)
    assert "summary" not in event.raw and "attendees" not in event.raw and "location" not in event.raw
    assert "Dentist" not in repr(event)


def test_free_declined_cancelled_and_all_day_events_hold_no_time_unless_the_policy_says_so(
    google, connection
):
    free = google.add_event(ACCOUNT, timed(soon(1), transparency="transparent"))
    declined = google.add_event(
        ACCOUNT, timed(soon(2), attendees=[{"email": ACCOUNT, "self": True, "responseStatus": "declined"}])
    )
    day = soon(3).date()
    all_day = google.add_event(
        ACCOUNT, {"start": {"date": day.isoformat()}, "end": {"date": (day + timedelta(days=1)).isoformat()}}
    )
    busy = google.add_event(ACCOUNT, timed(soon(4)))
    connector = GoogleCalendarConnector(connection)
    first = connector.fetch(cursor=None, window=window())
    blocking = {e.external_id for e in first.events if not e.deleted}
    assert blocking == {busy["id"]}
    assert {e.external_id for e in first.events if e.deleted} == {free["id"], declined["id"], all_day["id"]}
    google.delete_event(ACCOUNT, busy["id"])
    (gone,) = connector.fetch(cursor=first.cursor, window=window()).events
    assert (gone.external_id, gone.deleted, gone.busy_only) == (busy["id"], True, True)
    connection.config["all_day_blocks"] = True
    events = GoogleCalendarConnector(connection).fetch(cursor=None, window=window()).events
    assert all_day["id"] in {e.external_id for e in events if not e.deleted}


def test_incremental_sync_sends_only_the_sync_token_and_returns_changes(google, connection):
    connector = GoogleCalendarConnector(connection)
    first = connector.fetch(cursor=None, window=window())
    added = google.add_event(ACCOUNT, timed(soon(2)))
    second = connector.fetch(cursor=first.cursor, window=window())
    assert [e.external_id for e in second.events] == [added["id"]] and second.complete_window is None
    last = google.api_requests("/events")[-1]
    assert last["syncToken"] == first.cursor and "timeMin" not in last and "timeMax" not in last
    assert second.cursor != first.cursor


def test_an_expired_sync_token_raises_cursor_expired(google, connection):
    connector = GoogleCalendarConnector(connection)
    first = connector.fetch(cursor=None, window=window())
    google.expire_sync_tokens()
    with pytest.raises(CursorExpired):
        connector.fetch(cursor=first.cursor, window=window())


def test_our_own_events_are_recognised_by_the_private_property_not_the_title(google, connection):
    uid = str(uuid.uuid4())
    google.add_event(
        ACCOUNT, timed(soon(1), summary="Busy", extendedProperties={"private": {"hubAppointmentId": uid}})
    )
    google.add_event(ACCOUNT, timed(soon(2), summary="Appointment"))
    events = GoogleCalendarConnector(connection).fetch(cursor=None, window=window()).events
    own = [e for e in events if e.hub_uid]
    assert [e.hub_uid for e in own] == [uid] and not own[0].busy_only
    assert [e.busy_only for e in events if not e.hub_uid] == [True]


def job(operation, uid, start, status="scheduled"):
    return APIWriteQueue(
        operation=operation,
        payload={
            "uid": uid,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=50)).isoformat(),
            "timezone": "America/New_York",
            "status": status,
            "version": 1,
            "title": "Appointment",
        },
    )


def test_push_writes_a_phi_free_private_event_with_a_deterministic_id(google, connection):
    uid = str(uuid.uuid4())
    result = GoogleCalendarConnector(connection).push(job("create", uid, soon(1)))
    stored = google.get_event(ACCOUNT, result.external_id)
    assert result.external_id == event_id_for(uid) and result.version
    assert stored["summary"] == "Appointment" and stored["visibility"] == "private"
    assert stored["attendees"] == [] and stored["description"].startswith("http://hub.example/")
    assert stored["extendedProperties"]["private"] == {"hubAppointmentId": uid}
    assert set(stored) <= {
        *("kind", "etag", "id", "status", "htmlLink", "created", "updated", "summary", "description"),
        *("creator", "organizer", "start", "end", "iCalUID", "sequence", "attendees", "reminders"),
        *("eventType", "visibility", "transparency", "extendedProperties"),
    }
    connection.config["event_label"] = "Session"
    GoogleCalendarConnector(connection).push(job("update", uid, soon(1)))
    assert google.get_event(ACCOUNT, result.external_id)["summary"] == "Session"


def test_a_create_retried_after_a_lost_answer_converges_on_one_event(google, connection):
    uid = str(uuid.uuid4())
    connector = GoogleCalendarConnector(connection)
    connector.push(job("create", uid, soon(1)))  # its answer "lost": the queue retries the same job
    moved = soon(1) + timedelta(hours=2)
    result = connector.push(job("create", uid, moved))
    events = [e for e in google.events[ACCOUNT].values() if e["status"] != "cancelled"]
    assert len(events) == 1 and result.external_id == events[0]["id"]
    assert events[0]["start"]["dateTime"] == moved.isoformat()


def test_an_insert_that_timed_out_after_google_stored_it_is_retried_into_the_same_event(
    google, connection, monkeypatch
):
    monkeypatch.setattr("integrations.google.connector.TIMEOUT", 0.3)
    uid = str(uuid.uuid4())
    google.set_fault("timeout", seconds=1.0, lost_answer=True)
    with pytest.raises(ConnectorError) as exc:
        GoogleCalendarConnector(connection).push(job("create", uid, soon(1)))
    assert not exc.value.permanent  # the queue will retry it
    assert google.get_event(ACCOUNT, event_id_for(uid))["status"] == "confirmed"  # but Google has it
    result = GoogleCalendarConnector(connection).push(job("create", uid, soon(1)))
    inserts = [q for m, p, q in google.requests if m == "POST" and p.endswith("/events")]
    assert len(inserts) == 2 and result.external_id == event_id_for(uid)  # the retry got 409, then patched
    assert [e["id"] for e in google.events[ACCOUNT].values()] == [event_id_for(uid)]


def test_update_and_delete_are_idempotent_and_recreate_what_is_missing(google, connection):
    uid = str(uuid.uuid4())
    connector = GoogleCalendarConnector(connection)
    connector.push(job("update", uid, soon(1)))  # never created: the update inserts it
    assert google.get_event(ACCOUNT, event_id_for(uid))["status"] == "confirmed"
    connector.push(job("delete", uid, soon(1), status="cancelled"))
    connector.push(job("delete", uid, soon(1), status="cancelled"))  # already deleted: success
    assert google.get_event(ACCOUNT, event_id_for(uid))["status"] == "cancelled"
    connector.push(job("create", uid, soon(2)))  # deleted in Google, re-pushed: the id is restored
    assert google.get_event(ACCOUNT, event_id_for(uid))["status"] == "confirmed"


@pytest.mark.parametrize(
    "fault",
    [{"reason": "rateLimitExceeded"}, {"reason": "userRateLimitExceeded"}, {"status": 429}],
)
def test_rate_limits_are_retryable_and_carry_retry_after(google, connection, fault):
    google.set_fault("rate_limit", retry_after=30, **fault)
    with pytest.raises(ConnectorError) as exc:
        GoogleCalendarConnector(connection).push(job("create", str(uuid.uuid4()), soon(1)))
    assert not exc.value.permanent and exc.value.retry_after == 30.0
    assert not isinstance(exc.value, ConnectorAuthError)


def test_server_errors_are_retryable_and_bad_requests_are_permanent(google, connection):
    google.set_fault("server_error", status=503)
    with pytest.raises(ConnectorError) as exc:
        GoogleCalendarConnector(connection).fetch(cursor=None, window=window())
    assert not exc.value.permanent
    with pytest.raises(ConnectorError) as exc:
        GoogleCalendarConnector(connection).fetch(cursor=None, window=(soon(2), soon(1)))
    assert exc.value.permanent and "time range is empty" in exc.value.message


def test_an_expired_access_token_is_refreshed_once_and_a_revoked_grant_needs_reauth(google, connection):
    google.set_fault("expire_access_tokens")
    connector = GoogleCalendarConnector(connection)
    connector.fetch(cursor=None, window=window())
    assert connector.refreshed_tokens()["access_token"] != connection.credentials["access_token"]
    google.revoke(connection.credentials["refresh_token"])
    with pytest.raises(ConnectorAuthError, match="invalid_grant"):
        GoogleCalendarConnector(connection).fetch(cursor=None, window=window())


def test_a_timeout_is_a_retryable_error(google, connection, monkeypatch):
    monkeypatch.setattr("integrations.google.connector.TIMEOUT", 0.3)
    google.set_fault("timeout", seconds=1.0)
    with pytest.raises(ConnectorError) as exc:
        GoogleCalendarConnector(connection).fetch(cursor=None, window=window())
    assert not exc.value.permanent


def notification(**headers):
    base = {
        "HTTP_X_GOOG_CHANNEL_ID": "chan-1",
        "HTTP_X_GOOG_CHANNEL_TOKEN": "chan-secret",
        "HTTP_X_GOOG_RESOURCE_ID": "res-1",
        "HTTP_X_GOOG_RESOURCE_STATE": "exists",
        "HTTP_X_GOOG_MESSAGE_NUMBER": "7",
    }
    return RequestFactory().post("/webhooks/google/", data=b"", content_type="", **{**base, **headers})


def test_a_notification_is_verified_by_channel_token_and_resource(connection):
    connector = GoogleCalendarConnector(connection)
    assert connector.parse_webhook(notification()) == ["chan-1:7"]
    assert connector.parse_webhook(notification(HTTP_X_GOOG_RESOURCE_STATE="sync")) == []
    for wrong in (
        {"HTTP_X_GOOG_CHANNEL_TOKEN": "chan-secreT"},
        {"HTTP_X_GOOG_CHANNEL_TOKEN": ""},
        {"HTTP_X_GOOG_CHANNEL_ID": "chan-2"},
        {"HTTP_X_GOOG_RESOURCE_ID": "res-2"},
    ):
        with pytest.raises(ConnectorAuthError):
            connector.parse_webhook(notification(**wrong))


def test_a_recorded_page_maps_to_busy_time_and_tombstones_without_any_patient_data(google, connection):
    """The platforms.md §1 sample (schema confirmed, values invented), served as Google would send it."""
    import json
    from pathlib import Path

    page = json.loads((Path(__file__).parent / "fixtures" / "events_page.json").read_text())
    connector = GoogleCalendarConnector(connection)
    token = connector.fetch(cursor=None, window=window()).cursor
    for item in page["items"]:
        google.add_recorded(ACCOUNT, item)
    events = {e.external_id: e for e in connector.fetch(cursor=token, window=window()).events}
    session = events["7f3c2a9e1b4d4c8a9e0f1a2b3c4d5e6f"]
    assert session.busy_only and not session.deleted
    assert session.start.isoformat() == "2025-03-04T10:00:00-05:00"
    for secret in ("Jane", "555-0100", "client@example.net", "Room 2"):
        assert secret not in repr(session)
    assert events["0a1b2c3d4e5f"].deleted and events["series01_20250311T150000Z"].deleted


def test_an_unknown_resource_state_is_acknowledged_and_ignored(connection):
    assert (
        GoogleCalendarConnector(connection).parse_webhook(
            notification(HTTP_X_GOOG_RESOURCE_STATE="brand_new")
        )
        == []
    )


def test_a_401_after_one_refresh_is_an_auth_error_not_a_loop(google, connection):
    google.set_fault("expire_access_tokens", times=2)  # the refreshed token is refused as well
    with pytest.raises(ConnectorAuthError, match="401"):
        GoogleCalendarConnector(connection).push(job("create", str(uuid.uuid4()), soon(1)))
    token_calls = [p for m, p, q in google.requests if p == "/token"]
    assert len(token_calls) == 1
