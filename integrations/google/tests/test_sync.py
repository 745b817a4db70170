"""End to end over real HTTP: the hub and a therapist's Google calendar (the emulator) through
connection_sync, the connector's push, and the webhook view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AuditLog
from conflicts.models import Conflict
from integrations.google.connector import GoogleCalendarConnector, event_id_for
from integrations.models import Connection, ExternalRecord
from integrations.services import connection_sync, write_queue_drain
from scheduler.models import Appointment, BusyBlock
from scheduler.services import appointment_book, appointment_cancel, appointment_reschedule

from .conftest import ACCOUNT, soon, timed


def drain(connection: Connection) -> int:
    """The write queue's real drain (claims, budget, ledger), sending through the Google connector."""
    counts = write_queue_drain()
    connection.refresh_from_db()
    return counts.sent


def sync(connection):
    run = connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    return run


def book(therapist, days=2, hour=15):
    return appointment_book(
        actor=None, therapist=therapist, start=soon(days, hour), end=soon(days, hour) + timedelta(minutes=50)
    )


def test_first_and_incremental_sync_turn_other_events_into_busy_blocks_only(google, connection, therapist_a):
    dentist = google.add_event(ACCOUNT, timed(soon(2, 14)))
    google.add_event(ACCOUNT, timed(soon(3), transparency="transparent"))
    first = sync(connection)
    assert (first.status, first.full_read, first.created) == ("ok", True, 1)
    block = BusyBlock.objects.get(connection=connection)
    assert (block.therapist_id, block.external_id, block.start) == (
        therapist_a.pk,
        dentist["id"],
        soon(2, 14),
    )
    assert Appointment.objects.count() == 0
    assert ExternalRecord.objects.get(external_id=dentist["id"]).busy_block_id == block.pk
    assert connection.cursor.startswith("sync_")

    google.update_event(
        ACCOUNT,
        dentist["id"],
        start={"dateTime": soon(2, 16).isoformat()},
        end={"dateTime": soon(2, 17).isoformat()},
    )
    second = sync(connection)
    assert (second.full_read, second.updated) == (False, 1)
    assert BusyBlock.objects.get(connection=connection).start == soon(2, 16)

    google.update_event(ACCOUNT, dentist["id"], transparency="transparent")  # now "free": it stops blocking
    sync(connection)
    assert not BusyBlock.objects.filter(connection=connection).exists()
    google.update_event(ACCOUNT, dentist["id"], transparency="opaque")
    sync(connection)
    assert BusyBlock.objects.filter(connection=connection).count() == 1
    google.delete_event(ACCOUNT, dentist["id"])
    third = sync(connection)
    assert third.cancelled == 1 and not BusyBlock.objects.filter(connection=connection).exists()


def test_a_busy_block_over_a_hub_appointment_opens_a_conflict(google, connection, therapist_a):
    appointment = book(therapist_a)
    google.add_event(ACCOUNT, timed(appointment.start + timedelta(minutes=10)))
    sync(connection)
    conflict = Conflict.objects.get(kind="external_busy", status="open")
    assert list(conflict.appointments.all()) == [appointment]


def test_a_410_recovers_by_a_full_read_diffed_against_what_the_hub_has(google, connection):
    kept = google.add_event(ACCOUNT, timed(soon(2)))
    gone = google.add_event(ACCOUNT, timed(soon(3)))
    sync(connection)
    kept_block = BusyBlock.objects.get(external_id=kept["id"])
    google.delete_event(ACCOUNT, gone["id"])
    added = google.add_event(ACCOUNT, timed(soon(4)))
    google.expire_sync_tokens()
    run = sync(connection)
    assert run.status == "ok" and run.full_read
    assert set(BusyBlock.objects.values_list("external_id", flat=True)) == {kept["id"], added["id"]}
    assert BusyBlock.objects.get(external_id=kept["id"]).pk == kept_block.pk  # kept, not dropped and reloaded
    assert sync(connection).full_read is False


def test_a_410_recovery_sees_our_own_event_deleted_meanwhile(google, connection, therapist_a):
    appointment = book(therapist_a)
    drain(connection)
    sync(connection)
    google.delete_event(ACCOUNT, event_id_for(appointment.uid))
    google.expire_sync_tokens()
    run = sync(connection)
    assert run.full_read and "written again" in run.errors[0]
    drain(connection)
    assert google.get_event(ACCOUNT, event_id_for(appointment.uid))["status"] == "confirmed"
    assert Appointment.objects.get().status == "scheduled"


def test_hub_bookings_are_written_once_and_reading_them_back_creates_nothing(google, connection, therapist_a):
    appointment = book(therapist_a)
    assert drain(connection) == 1
    event = google.get_event(ACCOUNT, event_id_for(appointment.uid))
    assert event["summary"] == "Appointment" and "Thea" not in str(event)
    run = sync(connection)
    assert (run.created, run.updated, run.errors) == (0, 0, [])
    assert not BusyBlock.objects.exists() and Appointment.objects.count() == 1
    appointment_reschedule(actor=None, appointment=appointment, start=soon(2, 17))
    drain(connection)
    assert (
        google.get_event(ACCOUNT, event_id_for(appointment.uid))["start"]["dateTime"]
        == soon(2, 17).isoformat()
    )
    run = sync(connection)
    assert (run.created, run.updated) == (0, 0)
    appointment.refresh_from_db()
    assert appointment.start == soon(2, 17)


def test_a_time_moved_in_google_moves_the_hub_appointment_audited_with_its_source(
    google, connection, therapist_a
):
    appointment = book(therapist_a)
    drain(connection)
    sync(connection)
    event_id = event_id_for(appointment.uid)
    google.update_event(
        ACCOUNT,
        event_id,
        start={"dateTime": soon(3, 16).isoformat()},
        end={"dateTime": soon(3, 17).isoformat()},
    )
    run = sync(connection)
    appointment.refresh_from_db()
    assert run.updated == 1 and (appointment.start, appointment.end) == (soon(3, 16), soon(3, 17))
    entry = AuditLog.objects.filter(action="integrations.appointment.moved_in_calendar").get()
    assert entry.details["source"] == "google"
    drain(connection)  # the echo of the move converges: nothing changes any more
    assert (sync(connection).updated, Appointment.objects.get().start) == (0, soon(3, 16))


def test_a_move_in_google_onto_another_appointment_opens_a_conflict_instead_of_being_lost(
    google, connection, therapist_a
):
    first, second = book(therapist_a, hour=14), book(therapist_a, hour=16)
    drain(connection)
    sync(connection)
    google.update_event(
        ACCOUNT,
        event_id_for(second.uid),
        start={"dateTime": first.start.isoformat()},
        end={"dateTime": first.end.isoformat()},
    )
    sync(connection)
    second.refresh_from_db()
    assert second.start == first.start and second.override_reason
    conflict = Conflict.objects.get(kind="overlap", status="open")
    assert set(conflict.appointments.all()) == {first, second}


def test_when_the_hub_changed_last_its_time_is_written_back(google, connection, therapist_a):
    appointment = book(therapist_a)
    drain(connection)
    sync(connection)
    google.update_event(
        ACCOUNT,
        event_id_for(appointment.uid),
        start={"dateTime": soon(3, 16).isoformat()},
        end={"dateTime": soon(3, 17).isoformat()},
    )
    appointment = appointment_reschedule(
        actor=None, appointment=appointment, start=soon(2, 18)
    )  # later than Google
    sync(connection)
    appointment.refresh_from_db()
    assert appointment.start == soon(2, 18)
    drain(connection)
    assert (
        google.get_event(ACCOUNT, event_id_for(appointment.uid))["start"]["dateTime"]
        == soon(2, 18).isoformat()
    )


def test_a_deletion_in_google_is_written_again_unless_google_may_cancel(google, connection, therapist_a):
    appointment = book(therapist_a)
    drain(connection)
    sync(connection)
    google.delete_event(ACCOUNT, event_id_for(appointment.uid))
    run = sync(connection)
    appointment.refresh_from_db()
    assert appointment.status == "scheduled" and "written again" in run.errors[0]
    drain(connection)
    assert google.get_event(ACCOUNT, event_id_for(appointment.uid))["status"] == "confirmed"

    connection.config["google_may_cancel"] = True
    connection.save()
    sync(connection)
    google.delete_event(ACCOUNT, event_id_for(appointment.uid))
    sync(connection)
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    assert AuditLog.objects.filter(action="integrations.appointment.cancelled_in_calendar").count() == 1


def test_a_hub_cancellation_deletes_the_event_and_reading_that_back_changes_nothing(
    google, connection, therapist_a
):
    appointment = book(therapist_a)
    drain(connection)
    appointment_cancel(actor=None, appointment=appointment)
    drain(connection)
    assert google.get_event(ACCOUNT, event_id_for(appointment.uid))["status"] == "cancelled"
    run = sync(connection)
    assert run.status == "ok" and run.errors == [] and Appointment.objects.get().status == "cancelled"


def test_a_revoked_grant_marks_the_connection_needs_reauth_and_changes_nothing(google, connection):
    google.add_event(ACCOUNT, timed(soon(2)))
    sync(connection)
    google.revoke()
    run = sync(connection)
    assert run.status == "failed" and connection.status == Connection.Status.NEEDS_REAUTH
    assert BusyBlock.objects.count() == 1


def test_a_recurring_series_blocks_each_occurrence_and_a_cancelled_one_frees_only_itself(google, connection):
    instances = google.add_recurring(ACCOUNT, timed(soon(1)), count=3)
    sync(connection)
    assert BusyBlock.objects.count() == 3
    google.delete_event(ACCOUNT, instances[1]["id"])
    sync(connection)
    assert set(BusyBlock.objects.values_list("external_id", flat=True)) == {
        instances[0]["id"],
        instances[2]["id"],
    }


@pytest.fixture
def notify(client, django_capture_on_commit_callbacks):
    def post(**headers):
        base = {
            "HTTP_X_GOOG_CHANNEL_ID": "chan-1",
            "HTTP_X_GOOG_CHANNEL_TOKEN": "chan-secret",
            "HTTP_X_GOOG_RESOURCE_ID": "res-1",
            "HTTP_X_GOOG_RESOURCE_STATE": "exists",
            "HTTP_X_GOOG_MESSAGE_NUMBER": "2",
        }
        with django_capture_on_commit_callbacks(execute=True):  # the sync task runs eagerly on commit
            return client.post("/webhooks/google/", data=b"", content_type="", **{**base, **headers})

    return post


def test_a_verified_notification_syncs_and_a_wrong_or_unknown_channel_runs_nothing(
    google, connection, notify
):
    google.add_event(ACCOUNT, timed(soon(2)))
    assert notify(HTTP_X_GOOG_CHANNEL_TOKEN="nope").status_code == 403
    assert notify(HTTP_X_GOOG_CHANNEL_ID="unknown").status_code == 403
    assert not BusyBlock.objects.exists() and not connection.runs.exists()
    response = notify()
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    assert BusyBlock.objects.count() == 1  # the eager test worker synced
    assert notify().json() == {"status": "duplicate"}  # the same message number again
    assert notify(HTTP_X_GOOG_MESSAGE_NUMBER="3").json() == {"status": "accepted"}
    assert notify(HTTP_X_GOOG_RESOURCE_STATE="sync", HTTP_X_GOOG_MESSAGE_NUMBER="1").json() == {
        "status": "ignored"
    }


@pytest.mark.django_db(transaction=True)
def test_a_change_in_google_reaches_the_hub_by_a_real_push_notification(google, connection, live_server):
    """The emulator POSTs the notification to the running hub, which verifies it and syncs (eager worker)."""
    answer = GoogleCalendarConnector(connection).watch(
        channel_id="chan-live",
        token="chan-secret",
        address=f"{live_server.url}/webhooks/google/",
        ttl=timedelta(hours=1),
    )
    connection.config["channel"] = answer
    connection.save()
    sync(connection)
    google.add_event(ACCOUNT, timed(soon(2)))
    google.wait_notifications()
    sent = [n for n in google.notifications if n["headers"]["X-Goog-Channel-ID"] == "chan-live"]
    # The "sync" message may race the channel being stored (as with Google): only "exists" matters.
    assert [n["headers"]["X-Goog-Resource-State"] for n in sent] == ["sync", "exists"]
    assert sent[1]["status"] == 200
    assert BusyBlock.objects.filter(connection=connection).count() == 1
    google.open_channel(ACCOUNT, "chan-forged", f"{live_server.url}/webhooks/google/", token="guess")
    google.add_event(ACCOUNT, timed(soon(3)))
    google.wait_notifications()
    forged = [n["status"] for n in google.notifications if n["headers"]["X-Goog-Channel-ID"] == "chan-forged"]
    assert forged and set(forged) == {403}


def test_a_refreshed_access_token_is_stored_and_reused(google, connection):
    google.add_event(ACCOUNT, timed(soon(2)))
    old = connection.credentials["access_token"]
    google.set_fault("expire_access_tokens")
    assert sync(connection).status == "ok"
    assert connection.credentials["access_token"] != old  # stored, encrypted with the rest
    refreshes = sum(1 for _, path, _ in google.requests if path == "/token")
    assert sync(connection).status == "ok"
    assert sum(1 for _, path, _ in google.requests if path == "/token") == refreshes  # no second refresh


def test_the_window_moves_an_event_beyond_the_horizon_blocks_once_inside_and_a_passed_one_stays(
    google, connection, therapist_a
):
    """Issue 12 #15: an unchanged event 200 days ahead was never read (incremental changes only); the daily
    full read brings it in once it is inside the window, exactly once; what the window moved past stays."""
    import time_machine

    start = soon(0, 9)
    with time_machine.travel(start, tick=False) as clock:
        far = google.add_event(ACCOUNT, timed(start + timedelta(days=200)))
        past = google.add_event(ACCOUNT, timed(start - timedelta(days=25)))
        assert sync(connection).full_read
        assert list(BusyBlock.objects.values_list("external_id", flat=True)) == [past["id"]]
        clock.shift(timedelta(hours=12))
        assert not sync(connection).full_read  # incremental: the far event has not changed
        clock.shift(timedelta(days=25))  # it is now 175 days ahead, inside the 180-day window
        moved = sync(connection)
        assert (moved.full_read, moved.created, moved.cancelled) == (True, 1, 0)
        assert connection.cursor.startswith("sync_")  # the full read re-established a sync token
        for _ in range(2):  # an incremental run, then the next day's full read: no duplicate
            sync(connection)
            clock.shift(timedelta(days=1))
        assert sorted(BusyBlock.objects.values_list("external_id", flat=True)) == sorted(
            [far["id"], past["id"]]
        )
        assert BusyBlock.objects.get(external_id=far["id"]).start == start + timedelta(days=200)
        assert ExternalRecord.objects.filter(external_id=far["id"]).count() == 1
