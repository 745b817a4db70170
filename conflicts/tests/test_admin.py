"""The conflicts page as the front desk uses it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.urls import reverse

from audit.models import AuditLog
from conflicts.models import Conflict
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from scheduler.models import Appointment
from scheduler.services import appointment_book

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 EST


def _clash(frontdesk_user, therapist_a):
    hub = appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
    )
    zocdoc = Connection.objects.create(platform="zocdoc", display_name="Zocdoc")
    ext, _ = external_appointment_upsert(
        connection=zocdoc,
        external_id="zd-7",
        therapist_id=therapist_a.pk,
        start=SLOT + timedelta(minutes=30),
        end=SLOT + timedelta(minutes=60),
    )
    return Conflict.objects.get(kind="overlap"), hub, ext


def test_front_desk_finds_opens_and_resolves_a_conflict(client, frontdesk_user, therapist_a):
    conflict, hub, ext = _clash(frontdesk_user, therapist_a)
    client.force_login(frontdesk_user)
    listing = client.get(reverse("admin:conflicts_conflict_changelist"), follow=True)
    assert listing.redirect_chain[0][0].endswith("?status__exact=open")
    assert f"{hub.pk} (hub)" in listing.content.decode()

    page = client.get(reverse("admin:conflicts_conflict_change", args=[conflict.pk])).content.decode()
    assert "Mon 07 Dec 2026 10:00–10:50 EST" in page and "Mon 07 Dec 2026 10:30–11:00 EST" in page
    assert "Managed in Zocdoc" in page and "Cancel this one" in page

    response = client.post(
        reverse("admin:conflicts_conflict_resolve", args=[conflict.pk]),
        {"action": "cancel", "appointment": hub.pk},
        follow=True,
    )
    assert f"Conflict {conflict.pk} resolved (cancel)." in response.content.decode()
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution, conflict.resolved_by) == (
        "resolved",
        "cancel",
        frontdesk_user,
    )
    assert Appointment.objects.get(pk=hub.pk).status == "cancelled"
    assert AuditLog.objects.filter(action="conflicts.conflict.resolved", actor=frontdesk_user).exists()


def test_reschedule_from_the_conflict_page_takes_the_therapists_local_time(
    client, frontdesk_user, therapist_a
):
    conflict, hub, _ = _clash(frontdesk_user, therapist_a)
    client.force_login(frontdesk_user)
    client.post(
        reverse("admin:conflicts_conflict_resolve", args=[conflict.pk]),
        {"action": "reschedule", "appointment": hub.pk, "date": "2026-12-07", "time": "14:00"},
    )
    assert Appointment.objects.get(pk=hub.pk).start == datetime(2026, 12, 7, 19, 0, tzinfo=UTC)
    assert Conflict.objects.get(pk=conflict.pk).resolution == "reschedule"


def test_a_refused_resolution_is_shown_and_changes_nothing(client, frontdesk_user, therapist_a):
    conflict, hub, ext = _clash(frontdesk_user, therapist_a)
    client.force_login(frontdesk_user)
    response = client.post(
        reverse("admin:conflicts_conflict_resolve", args=[conflict.pk]), {"action": "accept"}, follow=True
    )
    assert "Accepting a conflict needs a reason." in response.content.decode()
    response = client.post(
        reverse("admin:conflicts_conflict_resolve", args=[conflict.pk]),
        {"action": "cancel", "appointment": ext.pk},
        follow=True,
    )
    assert "managed in Zocdoc" in response.content.decode()
    assert Conflict.objects.get(pk=conflict.pk).status == "open"


def test_conflicts_filter_by_source_and_appointments_list_marks_them(client, frontdesk_user, therapist_a):
    conflict, hub, ext = _clash(frontdesk_user, therapist_a)
    client.force_login(frontdesk_user)
    url = reverse("admin:conflicts_conflict_changelist")
    found = client.get(
        url, {"appointments__source_system": "zocdoc", "status__exact": "open"}
    ).content.decode()
    none = client.get(url, {"appointments__source_system": "kareo", "status__exact": "open"}).content.decode()
    assert f"{ext.pk} (zocdoc)" in found and f"{ext.pk} (zocdoc)" not in none
    marked = client.get(
        reverse("admin:scheduler_appointment_changelist"), {"conflict": "open"}
    ).content.decode()
    assert "⚠ 1 open" in marked


def test_therapists_cannot_reach_the_conflicts_page(client, therapist_a, frontdesk_user):
    conflict, *_ = _clash(frontdesk_user, therapist_a)
    client.force_login(therapist_a.user)
    response = client.post(
        reverse("admin:conflicts_conflict_resolve", args=[conflict.pk]), {"action": "dismiss"}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Conflict.objects.get(pk=conflict.pk).status == "open"
