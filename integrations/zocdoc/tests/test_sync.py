"""End to end: the hub syncs a Zocdoc connection from the emulator over real HTTP, through connection_sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.models import Connection
from integrations.services import connection_sync
from integrations.zocdoc.emulator import ZocdocEmulator, appointment_json, serve
from scheduler.models import Appointment

PROVIDER = "pr_abc123-def456_wxyz7890"


@pytest.fixture
def emulator():
    emulator = ZocdocEmulator({"client_id": "hub", "client_secret": "s3cret"})
    server, url = serve(emulator)
    emulator.url = url
    yield emulator
    server.shutdown()
    server.server_close()


@pytest.fixture
def connection(emulator, therapist_a):
    return Connection.objects.create(
        platform="zocdoc",
        display_name="Zocdoc",
        credentials={
            "client_id": "hub",
            "client_secret": "s3cret",
            "base_url": emulator.url,
            "token_url": f"{emulator.url}/oauth/token",
            "default_duration_minutes": 45,
        },
        config={"provider_map": {PROVIDER: therapist_a.pk}},
    )


def soon(days: int, hour: int = 15) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (now + timedelta(days=days)).replace(hour=hour)


def test_appointments_arrive_update_and_cancel_through_incremental_syncs(emulator, connection):
    a = emulator.add_appointment(appointment_json(soon(2), developer_patient_id="zd-pt-1"))
    b = emulator.add_appointment(appointment_json(soon(3), appointment_status="pending_booking"))
    first = connection_sync(connection_id=connection.pk)
    assert (first.status, first.created, first.full_read) == ("ok", 2, True)
    stored = Appointment.objects.get(external_id=a["appointment_id"])
    assert stored.end - stored.start == timedelta(minutes=45) and stored.status == "confirmed"
    assert stored.patient_ref.startswith("zocdoc:") and "zd-pt-1" not in stored.patient_ref

    emulator.update_appointment(b["appointment_id"], appointment_status="cancelled")
    second = connection_sync(connection_id=connection.pk)
    # The cursor bound is inclusive (same-second changes are not missed), so a row may be re-read unchanged.
    assert (second.full_read, second.cancelled, second.created) == (False, 1, 0)
    assert Appointment.objects.get(external_id=b["appointment_id"]).status == "cancelled"


def test_a_failing_platform_changes_nothing_and_the_next_sync_recovers(emulator, connection):
    emulator.add_appointment(appointment_json(soon(2)))
    connection_sync(connection_id=connection.pk)
    emulator.set_fault("server_error", times=1)
    failed = connection_sync(connection_id=connection.pk)
    assert failed.status == "failed" and Appointment.objects.filter(status="confirmed").count() == 1
    emulator.add_appointment(appointment_json(soon(4)))
    assert connection_sync(connection_id=connection.pk).created == 1


def test_wrong_credentials_mark_the_connection_needs_reauth(emulator, connection):
    connection.credentials = {**connection.credentials, "client_secret": "wrong"}
    connection.save()
    run = connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert run.status == "failed" and connection.status == "needs_reauth"
    assert connection_sync(connection_id=connection.pk) is None  # no further runs until re-authorised


def test_one_unreadable_appointment_is_reported_and_the_rest_applied(emulator, connection):
    good = emulator.add_appointment(appointment_json(soon(2)))
    bad = emulator.add_appointment(appointment_json(soon(3)))
    first = connection_sync(connection_id=connection.pk)
    assert first.created == 2
    emulator.appointments[bad["appointment_id"]]["provider_location_id"] = 12345
    emulator.update_appointment(good["appointment_id"], appointment_status="cancelled")
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert run.status == "ok" and run.cancelled == 1
    assert len(run.errors) == 1 and run.errors[0].startswith(bad["appointment_id"])
    # Unreadable is not gone: a complete read that could not parse a row does not cancel it.
    assert Appointment.objects.get(external_id=bad["appointment_id"]).status != "cancelled"


def test_a_rate_limit_backs_off_until_retry_after_and_deletes_nothing(emulator, connection):
    emulator.add_appointment(appointment_json(soon(2)))
    connection_sync(connection_id=connection.pk)
    emulator.set_fault("rate_limit", retry_after=90)
    failed = connection_sync(connection_id=connection.pk, force_full=True)
    connection.refresh_from_db()
    assert failed.status == "failed" and Appointment.objects.filter(status="confirmed").count() == 1
    assert 85 <= (connection.sync_not_before - failed.started_at).total_seconds() <= 95
    served = len(emulator.requests)
    assert connection_sync(connection_id=connection.pk) is None  # still backing off: no call at all
    assert len(emulator.requests) == served
    Connection.objects.filter(pk=connection.pk).update(
        sync_not_before=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert connection_sync(connection_id=connection.pk).status == "ok"
    connection.refresh_from_db()
    assert connection.sync_not_before is None


def test_the_window_moves_an_appointment_beyond_the_horizon_arrives_once_and_a_passed_one_stays(
    emulator, connection
):
    """Issue 12 #15: the daily full read brings in what was beyond the horizon at the first read, once;
    an appointment the window's start moved past is not taken as gone."""
    import time_machine

    start = soon(0, 9)
    with time_machine.travel(start, tick=False) as clock:
        # Modified before the other one: the incremental read (changes since the newest stamp) never sees it.
        far = emulator.add_appointment(
            appointment_json(start + timedelta(days=200), last_modified_time_utc="2025-01-05T10:00:00Z")
        )
        past = emulator.add_appointment(appointment_json(start - timedelta(days=25)))
        # Starts just before the moved window's start and ends inside it: Zocdoc's read by start time does
        # not return it, which is no sign that it is gone.
        edge = emulator.add_appointment(appointment_json(start - timedelta(days=4, hours=12, minutes=10)))
        assert connection_sync(connection_id=connection.pk).created == 2
        clock.shift(timedelta(hours=12))
        assert not connection_sync(connection_id=connection.pk).full_read
        clock.shift(timedelta(days=25))
        moved = connection_sync(connection_id=connection.pk)
        assert (moved.full_read, moved.created, moved.cancelled) == (True, 1, 0)
        for _ in range(2):
            connection_sync(connection_id=connection.pk)
            clock.shift(timedelta(days=1))
    rows = dict(Appointment.objects.values_list("external_id", "status"))
    assert rows == {
        far["appointment_id"]: "confirmed",
        past["appointment_id"]: "confirmed",
        edge["appointment_id"]: "confirmed",
    }
