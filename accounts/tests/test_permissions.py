"""Who sees what: deny by default, therapists only their own, front desk no audit log or credentials."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from lib.errors import Forbidden, NotFound
from scheduler.selectors import (
    appointment_can_change,
    appointment_get_for_viewer,
    appointment_list_for_calendar,
    appointment_list_visible,
    patient_get_for_viewer,
    therapist_list_visible,
)
from scheduler.services import patient_create
from scheduler.tests.factories import AppointmentFactory


@pytest.fixture
def appointments(therapist_a, therapist_b):
    return AppointmentFactory(therapist=therapist_a), AppointmentFactory(therapist=therapist_b)


def test_a_therapist_sees_only_their_own_profile_and_appointments(therapist_a, therapist_b, appointments):
    mine, theirs = appointments
    viewer = therapist_a.user
    assert list(therapist_list_visible(viewer=viewer)) == [therapist_a]
    assert list(appointment_list_visible(viewer=viewer)) == [mine]
    assert appointment_get_for_viewer(viewer=viewer, pk=mine.pk) == mine
    with pytest.raises(NotFound):
        appointment_get_for_viewer(viewer=viewer, pk=theirs.pk)
    assert not appointment_can_change(user=viewer, appointment=mine)


def test_the_other_therapist_and_the_outsider_see_nothing_of_therapist_a(
    therapist_a, therapist_b, outsider, appointments
):
    mine, _ = appointments
    assert mine not in appointment_list_visible(viewer=therapist_b.user)
    assert not appointment_list_visible(viewer=outsider).exists()
    assert not therapist_list_visible(viewer=outsider).exists()
    window = (mine.start - timedelta(days=1), mine.end + timedelta(days=1))
    assert not appointment_list_for_calendar(viewer=outsider, start=window[0], end=window[1]).exists()


def test_front_desk_and_admin_see_every_calendar(frontdesk_user, admin_user, appointments):
    for user in (frontdesk_user, admin_user):
        assert set(appointment_list_visible(viewer=user)) == set(appointments)
        assert appointment_can_change(user=user, appointment=appointments[0])


def test_calendar_selector_uses_interval_intersection(frontdesk_user, therapist_a):
    long = AppointmentFactory(therapist=therapist_a)
    long.end = long.start + timedelta(hours=5)
    long.save()
    probe_start = long.start + timedelta(hours=2)
    found = appointment_list_for_calendar(
        viewer=frontdesk_user, start=probe_start, end=probe_start + timedelta(hours=1)
    )
    assert list(found) == [long]


def test_only_admin_and_front_desk_read_patients_and_each_read_is_audited(
    frontdesk_user, therapist_a, outsider
):
    from audit.models import AuditLog

    patient = patient_create(actor=frontdesk_user, name="Pat Example")
    assert patient_get_for_viewer(viewer=frontdesk_user, ref=patient.ref).name == "Pat Example"
    assert AuditLog.objects.filter(action="scheduler.patient.viewed", target_id=str(patient.pk)).count() == 1
    for user in (therapist_a.user, outsider):
        with pytest.raises(Forbidden):
            patient_get_for_viewer(viewer=user, ref=patient.ref)


# --- the admin site -------------------------------------------------------------------------------


def test_therapists_and_outsiders_cannot_use_the_admin(client, therapist_a, outsider):
    for user in (therapist_a.user, outsider):
        client.force_login(user)
        response = client.get(reverse("admin:scheduler_appointment_changelist"))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_front_desk_uses_calendars_but_not_the_audit_log_or_credentials(client, frontdesk_user, appointments):
    client.force_login(frontdesk_user)
    response = client.get(reverse("admin:scheduler_appointment_changelist"))
    assert response.status_code == 200 and str(appointments[0].pk) in response.content.decode()
    assert client.get(reverse("admin:audit_auditlog_changelist")).status_code == 403
    assert client.get(reverse("admin:integrations_connection_add")).status_code == 403


def test_admin_reads_the_audit_log_which_cannot_be_edited(client, admin_user, appointments):
    client.force_login(admin_user)
    assert client.get(reverse("admin:audit_auditlog_changelist")).status_code == 200
    from audit.models import AuditLog

    entry = AuditLog.objects.order_by("seq").first()
    assert (
        client.post(reverse("admin:audit_auditlog_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_patient_list_shows_pseudonyms_only_and_opening_a_record_is_audited(client, frontdesk_user):
    from audit.models import AuditLog

    patient = patient_create(actor=frontdesk_user, name="Quincy Phiholder")
    client.force_login(frontdesk_user)
    listing = client.get(reverse("admin:scheduler_patient_changelist")).content.decode()
    assert patient.ref in listing and "Quincy" not in listing
    detail = client.get(reverse("admin:scheduler_patient_change", args=[patient.pk]))
    assert "Quincy" in detail.content.decode()
    assert AuditLog.objects.filter(action="scheduler.patient.viewed", actor=frontdesk_user).count() == 1


def test_repeated_failed_logins_lock_the_account(client, frontdesk_user, settings):
    url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "fran", "password": "wrong"})
    response = client.post(url, {"username": "fran", "password": "pw-desk-123"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_correct_login_works_before_the_limit(client, frontdesk_user):
    client.post(reverse("admin:login"), {"username": "fran", "password": "wrong"})
    response = client.post(
        reverse("admin:login"), {"username": "fran", "password": "pw-desk-123", "next": "/admin/"}
    )
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(frontdesk_user.pk)
