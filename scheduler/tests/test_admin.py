"""The admin as the front desk uses it: forms in the therapist's local time, actions through services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from audit.models import AuditLog
from scheduler.models import Appointment, Therapist
from scheduler.services import appointment_book
from scheduler.tests.factories import AppointmentFactory


def _book_form(therapist, date="2026-12-07", time="10:00", **extra):
    return {
        "therapist": therapist.pk,
        "type": "consult",
        "date": date,
        "start_time": time,
        "duration_minutes": 50,
        "patient_ref": "",
        **extra,
    }


def test_front_desk_books_in_the_therapists_local_time(client, frontdesk_user, therapist_b):
    client.force_login(frontdesk_user)
    response = client.post(reverse("admin:scheduler_appointment_add"), _book_form(therapist_b))
    assert response.status_code == 302, response.content.decode()[:2000]
    appt = Appointment.objects.get()
    assert appt.start == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET)
    listing = client.get(reverse("admin:scheduler_appointment_changelist")).content.decode()
    assert "Mon 07 Dec 2026 10:00–10:50 CET" in listing


def test_a_clash_in_the_admin_form_is_a_form_error_and_writes_nothing(client, frontdesk_user, therapist_b):
    client.force_login(frontdesk_user)
    client.post(reverse("admin:scheduler_appointment_add"), _book_form(therapist_b))
    response = client.post(reverse("admin:scheduler_appointment_add"), _book_form(therapist_b, time="10:30"))
    assert response.status_code == 200
    assert "already has appointment" in response.content.decode()
    assert Appointment.objects.count() == 1


def test_a_local_time_skipped_by_the_clock_change_is_refused(client, frontdesk_user, therapist_a):
    client.force_login(frontdesk_user)
    response = client.post(
        reverse("admin:scheduler_appointment_add"), _book_form(therapist_a, date="2027-03-14", time="02:30")
    )
    assert "does not exist in America/New_York" in response.content.decode()
    assert not Appointment.objects.exists()


def test_status_actions_go_through_the_services_and_report_refusals(client, frontdesk_user, therapist_a):
    start = datetime(2026, 12, 7, 15, tzinfo=UTC)
    a = appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=start, end=start + timedelta(hours=1)
    )
    client.force_login(frontdesk_user)
    url = reverse("admin:scheduler_appointment_changelist")
    client.post(url, {"action": "confirm", "_selected_action": [a.pk]})
    a.refresh_from_db()
    assert a.status == "confirmed"
    assert AuditLog.objects.filter(
        action="scheduler.appointment.status_changed", actor=frontdesk_user
    ).exists()
    response = client.post(url, {"action": "uncancel", "_selected_action": [a.pk]}, follow=True)
    assert "Only a cancelled appointment can be restored." in response.content.decode()
    a.refresh_from_db()
    assert a.status == "confirmed"


def test_working_hours_editor_validates_and_saves_through_the_service(client, admin_user, therapist_a):
    client.force_login(admin_user)
    url = reverse("admin:scheduler_therapist_change", args=[therapist_a.pk])
    form = {
        "name": therapist_a.name,
        "email": therapist_a.email,
        "user": therapist_a.user_id,
        "timezone": therapist_a.timezone,
        "active": "on",
        "hours_monday": "09:00-12:00, 13:00-18:00",
        "hours_tuesday": "",
        "hours_wednesday": "17:00-09:00",
        "hours_thursday": "",
        "hours_friday": "",
        "hours_saturday": "",
        "hours_sunday": "",
        "time_off-TOTAL_FORMS": 0,
        "time_off-INITIAL_FORMS": 0,
    }
    response = client.post(url, form)
    assert response.status_code == 200 and "wednesday" in response.content.decode()
    form["hours_wednesday"] = "10:00-14:00"
    assert client.post(url, form).status_code == 302
    therapist_a = Therapist.objects.get(pk=therapist_a.pk)
    assert therapist_a.working_hours == {
        "monday": ["09:00-12:00", "13:00-18:00"],
        "wednesday": ["10:00-14:00"],
    }
    changes = AuditLog.objects.filter(action="scheduler.therapist.working_hours_changed", actor=admin_user)
    assert changes.exists()


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("zocdoc", "scheduled"),
        ("kareo", "confirmed"),
        ("simplepractice", "scheduled"),
        ("ics_feed", "scheduled"),
        ("hub", "cancelled"),
        ("hub", "completed"),
    ],
)
def test_the_read_only_change_page_of_an_external_or_finished_appointment_renders(
    client, frontdesk_user, therapist_a, source, status
):
    appt = AppointmentFactory(
        therapist=therapist_a,
        source_system=source,
        external_id="" if source == "hub" else "ext-1",
        status=status,
        start=datetime(2026, 12, 7, 14, tzinfo=UTC),
    )
    client.force_login(frontdesk_user)
    response = client.get(reverse("admin:scheduler_appointment_change", args=[appt.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Mon 07 Dec 2026 09:00–09:50 EST" in page  # the time, in the therapist's zone
    assert 'name="start_time"' not in page  # view only: nothing to edit
    # and posting to it changes nothing
    response = client.post(
        reverse("admin:scheduler_appointment_change", args=[appt.pk]), _book_form(therapist_a, time="11:00")
    )
    assert response.status_code == 403
    appt.refresh_from_db()
    assert appt.start == datetime(2026, 12, 7, 14, tzinfo=UTC)
