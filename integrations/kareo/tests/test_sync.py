"""End to end: the hub syncs a Kareo connection from the emulator over real HTTP, through connection_sync."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import PeriodicTask

from integrations.kareo.emulator import appointment_data, kareo_datetime
from integrations.models import Connection, ExternalRecord
from integrations.services import connection_schedule, connection_sync
from scheduler.models import Appointment

from .conftest import CREDENTIALS, ZONE, local

JANE, JOHN = "Jane Doe, LCSW", "John Roe, PhD"


@pytest.fixture
def connection(emulator, therapist_a, therapist_b):
    return Connection.objects.create(
        platform="kareo",
        display_name="Kareo",
        credentials={**CREDENTIALS, "wsdl_url": emulator.wsdl_url},
        config={"timezone": ZONE, "provider_map": {JANE: therapist_a.pk, JOHN: therapist_b.pk}},
    )


def seed(emulator) -> None:
    emulator.add_appointment(appointment_data(1, local(1, 9), local(1, 9, 50), resource=JANE, patient_id=71))
    emulator.add_appointment(
        appointment_data(2, local(2, 14), local(2, 14, 50), resource=JOHN, status="Scheduled")
    )
    emulator.add_appointment(appointment_data(3, local(3, 11), local(3, 11, 30), resource=JANE))


def state() -> dict[str, tuple]:
    return {a.external_id: (a.start, a.end, a.status, a.version) for a in Appointment.objects.all()}


def test_the_first_sync_is_a_full_read_that_creates_every_appointment(emulator, connection, therapist_a):
    seed(emulator)
    run = connection_sync(connection_id=connection.pk)
    assert (run.status, run.full_read, run.created, run.errors) == ("ok", True, 3, [])
    stored = Appointment.objects.get(external_id="1")
    assert stored.therapist == therapist_a and stored.source_system == "kareo"
    # 9:00 in Chicago is 14:00 or 15:00 UTC depending on the season: stored as the instant, not the wall time.
    assert stored.start == local(1, 9).replace(tzinfo=ZoneInfo(ZONE))
    assert stored.patient_ref.startswith("kareo:") and "71" not in stored.patient_ref
    assert Appointment.objects.get(external_id="2").status == "scheduled"
    connection.refresh_from_db()
    assert connection.status == "ok" and connection.cursor.endswith("Z")


def test_an_incremental_sync_applies_only_the_changed_rows(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    before = state()
    emulator.update_appointment(
        2, StartDate=kareo_datetime(local(2, 15)), EndDate=kareo_datetime(local(2, 15, 50))
    )
    run = connection_sync(connection_id=connection.pk)
    # The cursor bound is inclusive: the row stamped at the cursor is read again, and skipped as not newer.
    assert (run.status, run.full_read, run.updated, run.created, run.cancelled) == ("ok", False, 1, 0, 0)
    assert run.unchanged == run.fetched - 1 and run.fetched < 3
    after = state()
    assert (
        after["2"][0] == local(2, 15).replace(tzinfo=ZoneInfo(ZONE)) and after["2"][3] == before["2"][3] + 1
    )
    assert {k: v for k, v in after.items() if k != "2"} == {k: v for k, v in before.items() if k != "2"}

    again = connection_sync(connection_id=connection.pk)  # nothing changed since: re-read rows are skipped
    assert (again.created, again.updated, again.cancelled) == (0, 0, 0) and again.unchanged == again.fetched
    assert state() == after


def test_a_cancelled_status_cancels_the_appointment(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    emulator.update_appointment(3, ConfirmationStatus="Cancelled")
    run = connection_sync(connection_id=connection.pk)
    assert run.cancelled == 1 and Appointment.objects.get(external_id="3").status == "cancelled"
    assert Appointment.objects.filter(status="cancelled").count() == 1


def test_a_row_gone_from_a_complete_window_read_is_cancelled(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    emulator.delete_appointment(1)
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert run.full_read and run.cancelled == 1
    assert Appointment.objects.get(external_id="1").status == "cancelled"
    record = ExternalRecord.objects.get(connection=connection, external_id="1")
    assert record.tombstone_reason == "missing from a complete read"
    assert Appointment.objects.exclude(status="cancelled").count() == 2


def test_throttling_fails_the_run_records_the_wait_and_deletes_nothing(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    before = state()
    emulator.min_interval = 3600  # the sync just ran: Kareo refuses another poll this soon
    run = connection_sync(connection_id=connection.pk, force_full=True)
    connection.refresh_from_db()
    assert run.status == "failed" and "throttled" in run.errors[0]
    assert "retry after 300 s" in run.errors[0]
    assert connection.status == "ok" and "throttled" in connection.last_error  # retryable: not paused
    assert state() == before


def test_refused_credentials_mark_the_connection_needs_reauth(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    before = state()
    connection.credentials = {**connection.credentials, "password": "changed-at-kareo"}
    connection.save()
    run = connection_sync(connection_id=connection.pk, force_full=True)
    connection.refresh_from_db()
    assert run.status == "failed" and connection.status == "needs_reauth"
    assert "Invalid user name and/or password" in connection.last_error
    assert state() == before
    assert connection_sync(connection_id=connection.pk) is None  # no further runs until re-authorised


@pytest.mark.parametrize(
    ("fault", "options"),
    [("server_error", {}), ("malformed", {}), ("error", {"message": "Unexpected error"})],
)
def test_a_failed_fetch_changes_nothing(emulator, connection, fault, options):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    before = state()
    emulator.delete_appointment(1)  # would be cancelled by a successful full read
    emulator.set_fault(fault, **options)
    run = connection_sync(connection_id=connection.pk, force_full=True)
    connection.refresh_from_db()
    assert run.status == "failed" and connection.status == "ok" and connection.last_error
    assert state() == before


def test_a_timeout_changes_nothing(emulator, connection, monkeypatch):
    from integrations.kareo import connector as module

    seed(emulator)
    connection_sync(connection_id=connection.pk)
    before = state()
    monkeypatch.setattr(module, "DEFAULT_TIMEOUT", (1.0, 0.5))
    monkeypatch.setattr(module, "_clients", {})
    emulator.delete_appointment(1)
    emulator.set_fault("timeout", seconds=2.0)
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert run.status == "failed" and "timed out" in run.errors[0]
    assert state() == before


def test_one_bad_row_is_reported_and_the_rest_applied(emulator, connection):
    seed(emulator)
    emulator.add_appointment(
        {**appointment_data(4, local(4), local(4, 11), resource=JANE), "EndDate": "soon"}
    )
    run = connection_sync(connection_id=connection.pk)
    assert (
        run.status == "ok" and run.created == 3 and len(run.errors) == 1 and run.errors[0].startswith("4: ")
    )
    assert not Appointment.objects.filter(external_id="4").exists()


def test_a_bad_row_is_never_taken_as_deleted(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk)
    emulator.update_appointment(1, EndDate="garbled")
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert run.cancelled == 0 and Appointment.objects.get(external_id="1").status == "confirmed"


def test_an_unmapped_provider_is_reported_not_guessed(emulator, connection):
    emulator.add_appointment(appointment_data(9, local(1), local(1, 11), resource="Someone Else, MD"))
    run = connection_sync(connection_id=connection.pk)
    assert run.created == 0 and "no therapist mapped" in run.errors[0]


def test_a_connection_without_a_practice_zone_is_an_error_not_a_guess(emulator, connection):
    seed(emulator)
    connection.config = {"provider_map": connection.config["provider_map"]}
    connection.save()
    run = connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert run.status == "failed" and connection.status == "error" and "timezone" in connection.last_error
    assert not Appointment.objects.exists()


def test_the_beat_schedule_is_never_more_often_than_five_minutes(connection):
    connection.sync_interval_minutes = 1
    connection.save()
    connection_schedule(connection=connection)
    task = PeriodicTask.objects.get(name=f"sync connection {connection.pk}")
    assert task.enabled and task.interval.every == 5 and task.interval.period == "minutes"

    connection.sync_interval_minutes = 20
    connection.save()
    connection_schedule(connection=connection)
    task.refresh_from_db()
    assert task.interval.every == 20


def test_the_same_window_read_twice_is_idempotent(emulator, connection):
    seed(emulator)
    connection_sync(connection_id=connection.pk, force_full=True)
    before = state()
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert (run.created, run.updated, run.cancelled, run.unchanged) == (0, 0, 0, 3)
    assert state() == before and timedelta(0) < before["1"][1] - before["1"][0]
