"""Resolving conflicts as the front desk does: every action through a service, audited, re-detected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditLog
from conflicts.models import Conflict
from conflicts.services import conflict_resolve, conflicts_detect
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from lib.errors import BookingConflict, Forbidden, InvalidInput
from scheduler.models import Appointment
from scheduler.services import appointment_book

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


@pytest.fixture
def overlap(admin_user, therapist_a):
    first = appointment_book(
        actor=admin_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
    )
    second = appointment_book(
        actor=admin_user,
        therapist=therapist_a,
        start=SLOT + timedelta(minutes=20),
        end=SLOT + timedelta(minutes=70),
        override_reason="squeezed in",
    )
    return Conflict.objects.get(kind="overlap", status="open"), first, second


def test_cancelling_one_side_resolves_the_conflict_and_is_audited(frontdesk_user, overlap):
    conflict, first, second = overlap
    resolved = conflict_resolve(actor=frontdesk_user, conflict=conflict, action="cancel", appointment=second)
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == (
        "resolved",
        "cancel",
        frontdesk_user,
    )
    assert Appointment.objects.get(pk=second.pk).status == "cancelled"
    entry = AuditLog.objects.get(action="conflicts.conflict.resolved")
    assert entry.details["resolution"] == "cancel" and entry.actor == frontdesk_user


def test_rescheduling_one_side_to_a_free_time_resolves_it(frontdesk_user, overlap):
    conflict, first, second = overlap
    conflict_resolve(
        actor=frontdesk_user,
        conflict=conflict,
        action="reschedule",
        appointment=second,
        start=SLOT + timedelta(hours=2),
    )
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution) == ("resolved", "reschedule")
    assert not Conflict.objects.filter(status="open").exists()


def test_rescheduling_into_another_clash_is_refused_and_changes_nothing(frontdesk_user, overlap, therapist_a):
    conflict, first, second = overlap
    third = appointment_book(
        actor=frontdesk_user,
        therapist=therapist_a,
        start=SLOT + timedelta(hours=3),
        end=SLOT + timedelta(hours=3, minutes=50),
    )
    with pytest.raises(BookingConflict) as exc:
        conflict_resolve(
            actor=frontdesk_user,
            conflict=conflict,
            action="reschedule",
            appointment=second,
            start=SLOT + timedelta(hours=3),
        )
    assert exc.value.details["conflicting_appointment_ids"] == [third.pk]
    conflict.refresh_from_db()
    assert conflict.status == "open"
    assert Appointment.objects.get(pk=second.pk).start == SLOT + timedelta(minutes=20)


def test_a_reschedule_that_leaves_the_finding_in_place_is_rolled_back(frontdesk_user, therapist_a):
    evening = appointment_book(
        actor=frontdesk_user,
        therapist=therapist_a,
        start=SLOT + timedelta(hours=9),
        end=SLOT + timedelta(hours=9, minutes=50),
    )  # 19:00 local, outside 09-17
    conflict = Conflict.objects.get(kind="outside_hours")
    with pytest.raises(InvalidInput, match="still holds"):
        conflict_resolve(
            actor=frontdesk_user,
            conflict=conflict,
            action="reschedule",
            appointment=evening,
            start=SLOT + timedelta(hours=10),
        )
    assert Appointment.objects.get(pk=evening.pk).start == SLOT + timedelta(hours=9)
    assert Conflict.objects.get(pk=conflict.pk).status == "open"


def test_accepting_needs_a_reason_and_is_not_reopened_by_detection(frontdesk_user, overlap, therapist_a):
    conflict, *_ = overlap
    with pytest.raises(InvalidInput, match="needs a reason"):
        conflict_resolve(actor=frontdesk_user, conflict=conflict, action="accept")
    conflict_resolve(actor=frontdesk_user, conflict=conflict, action="accept", note="co-therapy session")
    conflicts_detect(
        therapist_ids=[therapist_a.pk], start=SLOT - timedelta(days=1), end=SLOT + timedelta(days=1)
    )
    assert not Conflict.objects.filter(kind="overlap", status="open").exists()
    assert Conflict.objects.get(pk=conflict.pk).note == "co-therapy session"


def test_dismissing_marks_the_conflict_dismissed(admin_user, overlap):
    conflict, *_ = overlap
    assert conflict_resolve(actor=admin_user, conflict=conflict, action="dismiss").status == "dismissed"


def test_merging_a_duplicate_keeps_one_and_links_the_other(frontdesk_user, therapist_a):
    zocdoc = Connection.objects.create(platform="zocdoc", display_name="Zocdoc")
    kareo = Connection.objects.create(platform="kareo", display_name="Kareo")
    z, _ = external_appointment_upsert(
        connection=zocdoc,
        external_id="z-1",
        therapist_id=therapist_a.pk,
        start=SLOT,
        end=SLOT + timedelta(minutes=30),
    )
    k, _ = external_appointment_upsert(
        connection=kareo,
        external_id="k-1",
        therapist_id=therapist_a.pk,
        start=SLOT + timedelta(minutes=2),
        end=SLOT + timedelta(minutes=30),
    )
    conflict = Conflict.objects.get(kind="duplicate", status="open")
    assert not Conflict.objects.filter(kind="overlap", status="open").exists()
    conflict_resolve(actor=frontdesk_user, conflict=conflict, action="merge", appointment=z)
    k.refresh_from_db()
    assert (k.merged_into, k.status) == (z, "cancelled")
    assert Conflict.objects.get(pk=conflict.pk).resolution == "merge"
    # The source still reports its record; it stays merged and does not occupy time again.
    external_appointment_upsert(
        connection=kareo,
        external_id="k-1",
        therapist_id=therapist_a.pk,
        start=SLOT + timedelta(minutes=2),
        end=SLOT + timedelta(minutes=35),
    )
    k.refresh_from_db()
    assert (k.merged_into, k.status) == (z, "cancelled")
    assert not Conflict.objects.filter(status="open").exists()


def test_merge_only_applies_to_duplicates(frontdesk_user, overlap):
    conflict, first, _ = overlap
    with pytest.raises(InvalidInput, match="Only a duplicate"):
        conflict_resolve(actor=frontdesk_user, conflict=conflict, action="merge", appointment=first)


def test_therapists_and_outsiders_cannot_resolve(therapist_a, outsider, overlap):
    conflict, first, _ = overlap
    for user in (therapist_a.user, outsider):
        with pytest.raises(Forbidden):
            conflict_resolve(actor=user, conflict=conflict, action="cancel", appointment=first)


def test_resolving_needs_an_involved_appointment_and_an_open_conflict(frontdesk_user, overlap, therapist_a):
    conflict, first, _ = overlap
    stranger = appointment_book(
        actor=frontdesk_user,
        therapist=therapist_a,
        start=SLOT + timedelta(hours=5),
        end=SLOT + timedelta(hours=5, minutes=50),
    )
    with pytest.raises(InvalidInput, match="Choose one of the appointments"):
        conflict_resolve(actor=frontdesk_user, conflict=conflict, action="cancel", appointment=stranger)
    conflict_resolve(actor=frontdesk_user, conflict=conflict, action="dismiss")
    with pytest.raises(InvalidInput, match="already dismissed"):
        conflict_resolve(actor=frontdesk_user, conflict=conflict, action="cancel", appointment=first)
