from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.models import AuditLog
from conflicts.models import Conflict
from integrations.models import APIWriteQueue, Connection
from integrations.services import external_appointment_upsert
from lib.errors import BookingConflict, Forbidden, InvalidInput, StaleVersion
from scheduler.models import Appointment, AppointmentStatus
from scheduler.services import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    appointment_set_status,
    patient_create,
    therapist_set_working_hours,
)

NY = ZoneInfo("America/New_York")
MON = datetime(2026, 12, 7, 10, 0, tzinfo=NY)  # a Monday, inside 09:00-17:00


def book(actor, therapist, start, minutes=50, **kw):
    return appointment_book(
        actor=actor, therapist=therapist, start=start, end=start + timedelta(minutes=minutes), **kw
    )


def test_booking_stores_utc_times_audits_and_queues_nothing_without_connections(frontdesk_user, therapist_a):
    appt = book(frontdesk_user, therapist_a, MON)
    appt.refresh_from_db()
    assert appt.start == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    assert appt.timezone == "America/New_York" and appt.source_system == "hub" and appt.version == 1
    entry = AuditLog.objects.get(action="scheduler.appointment.booked")
    assert entry.target_id == str(appt.pk) and entry.actor == frontdesk_user
    assert not APIWriteQueue.objects.exists()


def test_booking_queues_one_write_per_writable_connection_in_the_same_transaction(
    frontdesk_user, therapist_a
):
    Connection.objects.create(platform="google", therapist=therapist_a, display_name="G", write_enabled=True)
    Connection.objects.create(platform="zocdoc", therapist=therapist_a, display_name="Z", write_enabled=True)
    appt = book(frontdesk_user, therapist_a, MON)
    job = APIWriteQueue.objects.get()
    assert (job.target_system, job.operation, job.status) == ("google", "create", "pending")
    assert job.payload["title"] == "Appointment" and "patient" not in str(job.payload).lower()
    appointment_reschedule(actor=frontdesk_user, appointment=appt, start=MON + timedelta(hours=2))
    assert list(APIWriteQueue.objects.values_list("operation", flat=True)) == ["create", "update"]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 12, 7, 10), datetime(2026, 12, 7, 11), "time zone offset"),
        (MON, MON - timedelta(minutes=5), "must be before end"),
        (MON, MON, "must be before end"),
    ],
)
def test_bad_times_are_refused_clearly_and_nothing_is_written(
    frontdesk_user, therapist_a, start, end, message
):
    audit_before = AuditLog.objects.count()
    with pytest.raises(InvalidInput, match=message):
        appointment_book(actor=frontdesk_user, therapist=therapist_a, start=start, end=end)
    assert not Appointment.objects.exists()
    assert AuditLog.objects.count() == audit_before


def test_booking_an_overlapping_slot_is_refused_naming_the_clashing_appointment(frontdesk_user, therapist_a):
    first = book(frontdesk_user, therapist_a, MON)
    with pytest.raises(BookingConflict) as exc:
        book(frontdesk_user, therapist_a, MON + timedelta(minutes=30))
    assert exc.value.details == {"conflicting_appointment_ids": [first.pk]}
    assert exc.value.http_status == 409
    assert Appointment.objects.count() == 1


def test_a_long_booking_spanning_a_short_one_is_refused(frontdesk_user, therapist_a):
    short = book(frontdesk_user, therapist_a, MON + timedelta(minutes=60), minutes=20)
    with pytest.raises(BookingConflict) as exc:
        book(frontdesk_user, therapist_a, MON, minutes=180)
    assert exc.value.details["conflicting_appointment_ids"] == [short.pk]


def test_back_to_back_bookings_are_fine_and_other_therapists_do_not_clash(
    frontdesk_user, therapist_a, therapist_b
):
    book(frontdesk_user, therapist_a, MON)
    book(frontdesk_user, therapist_a, MON + timedelta(minutes=50))
    book(frontdesk_user, therapist_b, MON)
    assert Appointment.objects.count() == 3


def test_service_buffers_count_as_occupied_time(frontdesk_user, therapist_a, session_service):
    book(frontdesk_user, therapist_a, MON, service=session_service)  # 10:00-10:50 + 10 min after
    with pytest.raises(BookingConflict):
        book(frontdesk_user, therapist_a, MON + timedelta(minutes=55), minutes=30)
    book(frontdesk_user, therapist_a, MON + timedelta(minutes=60), minutes=30)


def test_service_duration_must_be_one_the_service_offers(frontdesk_user, therapist_a, session_service):
    with pytest.raises(InvalidInput, match="lasts 50 minutes, not 45"):
        book(frontdesk_user, therapist_a, MON, minutes=45, service=session_service)


def test_unknown_patient_ref_is_refused_and_known_one_accepted(frontdesk_user, therapist_a):
    with pytest.raises(InvalidInput, match="No patient"):
        book(frontdesk_user, therapist_a, MON, patient_ref="pt_nobody")
    patient = patient_create(actor=frontdesk_user, name="Pat Example")
    assert book(frontdesk_user, therapist_a, MON, patient_ref=patient.ref).patient_ref == patient.ref


def test_admin_may_override_a_clash_with_a_reason_which_opens_a_conflict(admin_user, therapist_a):
    first = book(admin_user, therapist_a, MON)
    second = book(admin_user, therapist_a, MON, override_reason="Urgent, agreed with the therapist")
    assert second.override_reason == "Urgent, agreed with the therapist"
    conflict = Conflict.objects.get(kind="overlap", status="open")
    assert set(conflict.appointments.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert AuditLog.objects.filter(action="scheduler.appointment.booked", details__override=True).exists()


def test_front_desk_cannot_override_a_clash(frontdesk_user, therapist_a):
    book(frontdesk_user, therapist_a, MON)
    with pytest.raises(Forbidden):
        book(frontdesk_user, therapist_a, MON, override_reason="please")
    assert Appointment.objects.count() == 1


def test_external_appointments_that_clash_are_stored_and_a_conflict_opened(frontdesk_user, therapist_a):
    hub = book(frontdesk_user, therapist_a, MON)
    conn = Connection.objects.create(platform="zocdoc", display_name="Zocdoc")
    ext, created = external_appointment_upsert(
        connection=conn,
        external_id="zd-1",
        therapist_id=therapist_a.pk,
        start=MON,
        end=MON + timedelta(minutes=30),
    )
    assert created and ext.source_system == "zocdoc"
    conflict = Conflict.objects.get(kind="overlap")
    assert set(conflict.appointments.values_list("pk", flat=True)) == {hub.pk, ext.pk}
    # Re-applying the same fact changes nothing; moving it away closes the conflict.
    assert external_appointment_upsert(
        connection=conn,
        external_id="zd-1",
        therapist_id=therapist_a.pk,
        start=MON,
        end=MON + timedelta(minutes=30),
    ) == (ext, False)
    external_appointment_upsert(
        connection=conn,
        external_id="zd-1",
        therapist_id=therapist_a.pk,
        start=MON + timedelta(hours=3),
        end=MON + timedelta(hours=3, minutes=30),
    )
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution) == ("resolved", "no_longer_applies")


def test_rescheduling_into_a_taken_slot_is_refused_and_changes_nothing(frontdesk_user, therapist_a):
    a = book(frontdesk_user, therapist_a, MON)
    b = book(frontdesk_user, therapist_a, MON + timedelta(hours=2))
    with pytest.raises(BookingConflict):
        appointment_reschedule(actor=frontdesk_user, appointment=b, start=MON + timedelta(minutes=20))
    b.refresh_from_db()
    assert b.start == (MON + timedelta(hours=2)).astimezone(UTC) and b.version == 1
    moved = appointment_reschedule(actor=frontdesk_user, appointment=a, start=MON + timedelta(hours=4))
    assert moved.version == 2 and moved.end - moved.start == timedelta(minutes=50)


def test_stale_version_is_refused(frontdesk_user, therapist_a):
    a = book(frontdesk_user, therapist_a, MON)
    appointment_set_status(actor=frontdesk_user, appointment=a, status="confirmed")
    with pytest.raises(StaleVersion):
        appointment_reschedule(
            actor=frontdesk_user, appointment=a, start=MON + timedelta(hours=1), expected_version=1
        )


def test_cancel_frees_the_slot_and_uncancel_passes_the_guard_again(frontdesk_user, therapist_a):
    a = book(frontdesk_user, therapist_a, MON)
    appointment_cancel(actor=frontdesk_user, appointment=a)
    b = book(frontdesk_user, therapist_a, MON)
    with pytest.raises(BookingConflict) as exc:
        appointment_set_status(actor=frontdesk_user, appointment=a, status="scheduled")
    assert exc.value.details["conflicting_appointment_ids"] == [b.pk]
    a.refresh_from_db()
    assert a.status == AppointmentStatus.CANCELLED


def test_status_transitions_follow_the_table(frontdesk_user, therapist_a):
    a = book(frontdesk_user, therapist_a, MON)
    a = appointment_set_status(actor=frontdesk_user, appointment=a, status="completed")
    with pytest.raises(InvalidInput, match="Cannot change a completed appointment to 'confirmed'"):
        appointment_set_status(actor=frontdesk_user, appointment=a, status="confirmed")
    with pytest.raises(InvalidInput, match="cannot be cancelled"):
        appointment_cancel(actor=frontdesk_user, appointment=a)
    assert appointment_set_status(actor=frontdesk_user, appointment=a, status="no_show").status == "no_show"


def test_external_appointments_are_not_moved_from_the_hub(frontdesk_user, therapist_a):
    conn = Connection.objects.create(platform="kareo", display_name="Kareo")
    ext, _ = external_appointment_upsert(
        connection=conn,
        external_id="k-9",
        therapist_id=therapist_a.pk,
        start=MON,
        end=MON + timedelta(minutes=30),
    )
    with pytest.raises(InvalidInput, match="managed in Kareo"):
        appointment_reschedule(actor=frontdesk_user, appointment=ext, start=MON + timedelta(hours=1))


def test_working_hours_are_validated_and_outside_hours_conflicts_follow_them(
    frontdesk_user, therapist_a, django_capture_on_commit_callbacks
):
    evening = book(frontdesk_user, therapist_a, datetime(2026, 12, 7, 18, 0, tzinfo=NY))
    assert Conflict.objects.get(kind="outside_hours", status="open").appointments.get() == evening
    with pytest.raises(InvalidInput, match="monday"):
        therapist_set_working_hours(
            actor=frontdesk_user, therapist=therapist_a, working_hours={"monday": ["9-5"]}
        )
    # The re-check is a task sent on commit (eager in tests; a real worker in test_celery_worker).
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        therapist_set_working_hours(
            actor=frontdesk_user, therapist=therapist_a, working_hours={"monday": ["09:00-20:00"]}
        )
    assert len(callbacks) == 1
    assert not Conflict.objects.filter(kind="outside_hours", status="open").exists()


def test_patient_fields_are_encrypted_at_rest(frontdesk_user):
    from django.db import connection

    patient = patient_create(actor=frontdesk_user, name="Zelda Quartermaine", email="zq@example.com")
    with connection.cursor() as cur:
        cur.execute("SELECT name, email FROM scheduler_patient WHERE id = %s", [patient.pk])
        stored = cur.fetchone()
    assert "Zelda" not in stored[0] and "zq@" not in stored[1]
    assert type(patient).objects.get(pk=patient.pk).name == "Zelda Quartermaine"
    assert "Zelda" not in str(AuditLog.objects.filter(action="scheduler.patient.created").get().details)
