"""sync_apply: idempotent, monotonic, and only authoritative signals delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditLog
from conflicts.models import Conflict
from integrations.base import ExternalEvent, FetchResult
from integrations.models import Connection, ExternalRecord
from integrations.services import patient_pseudonym, sync_apply
from scheduler.models import Appointment, BusyBlock
from scheduler.services import appointment_book

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))


@pytest.fixture
def zocdoc(therapist_a):
    return Connection.objects.create(
        platform="zocdoc", display_name="Zocdoc", config={"provider_map": {"pr_1": therapist_a.pk}}
    )


def event(eid: str, hours: int = 0, *, version: str = "2026-11-20T10:00:00Z", **kw) -> ExternalEvent:
    start = SLOT + timedelta(hours=hours)
    return ExternalEvent(
        **{
            "external_id": eid,
            "start": start,
            "end": start + timedelta(minutes=30),
            "provider_key": "pr_1",
            "patient_key": "dev-pt-9",
            "version": version,
            "raw": {"appointment_id": eid},
            **kw,
        }
    )


def test_a_batch_creates_appointments_and_ledger_rows_with_pseudonymous_patients(zocdoc, therapist_a):
    counts = sync_apply(connection=zocdoc, result=FetchResult([event("a"), event("b", 2)]))
    assert (counts.created, counts.fetched, counts.errors) == (2, 2, [])
    a = Appointment.objects.get(external_id="a")
    assert (a.source_system, a.connection, a.therapist, a.timezone) == (
        "zocdoc",
        zocdoc,
        therapist_a,
        "America/New_York",
    )
    assert a.patient_ref == patient_pseudonym("zocdoc", "dev-pt-9") and "dev-pt-9" not in a.patient_ref
    assert ExternalRecord.objects.get(external_id="a").appointment == a
    assert AuditLog.objects.get(action="integrations.connection.synced").details["created"] == 2


def test_applying_the_same_batch_twice_changes_nothing(zocdoc):
    batch = FetchResult([event("a"), event("b", 2)])
    sync_apply(connection=zocdoc, result=batch)
    again = sync_apply(connection=zocdoc, result=batch)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert Appointment.objects.count() == 2 and Appointment.objects.filter(version=1).count() == 2


def test_an_older_version_arriving_late_never_overwrites_a_newer_one(zocdoc):
    sync_apply(connection=zocdoc, result=FetchResult([event("a", 3, version="2026-11-20T12:00:00Z")]))
    late = sync_apply(connection=zocdoc, result=FetchResult([event("a", 1, version="2026-11-20T11:00:00Z")]))
    assert late.unchanged == 1
    assert Appointment.objects.get().start == SLOT + timedelta(hours=3)


def test_a_newer_version_moves_the_appointment(zocdoc):
    sync_apply(connection=zocdoc, result=FetchResult([event("a")]))
    moved = sync_apply(connection=zocdoc, result=FetchResult([event("a", 4, version="2026-11-21T09:00:00Z")]))
    assert moved.updated == 1
    a = Appointment.objects.get()
    assert (a.start, a.version) == (SLOT + timedelta(hours=4), 2)


def test_a_tombstone_cancels_and_a_partial_fetch_deletes_nothing(zocdoc):
    sync_apply(connection=zocdoc, result=FetchResult([event("a"), event("b", 2)]))
    partial = sync_apply(connection=zocdoc, result=FetchResult([event("c", 4)]))  # incremental: a, b unseen
    assert partial.cancelled == 0 and Appointment.objects.filter(status="cancelled").count() == 0
    sync_apply(connection=zocdoc, result=FetchResult([ExternalEvent(external_id="a", deleted=True)]))
    assert Appointment.objects.get(external_id="a").status == "cancelled"
    assert ExternalRecord.objects.get(external_id="a").tombstone_reason == "deleted at source"


def test_a_complete_read_cancels_what_is_missing_in_its_window_only(zocdoc):
    far = event("far", 24 * 40)  # January, outside the window
    sync_apply(connection=zocdoc, result=FetchResult([event("a"), event("b", 2), far]))
    counts = sync_apply(connection=zocdoc, result=FetchResult([event("a")], complete_window=WINDOW))
    assert counts.cancelled == 1
    assert dict(Appointment.objects.values_list("external_id", "status")) == {
        "a": "scheduled",
        "b": "cancelled",
        "far": "scheduled",
    }
    assert ExternalRecord.objects.get(external_id="b").tombstone_reason == "missing from a complete read"


def test_unmapped_providers_and_bad_times_are_reported_and_skipped(zocdoc):
    bad = ExternalEvent(external_id="x", start=SLOT, end=SLOT, provider_key="pr_1")
    counts = sync_apply(
        connection=zocdoc, result=FetchResult([event("u", provider_key="pr_other"), bad, event("ok")])
    )
    assert counts.created == 1 and len(counts.errors) == 2
    assert "no therapist mapped for provider 'pr_other'" in counts.errors[0]
    assert list(Appointment.objects.values_list("external_id", flat=True)) == ["ok"]


def test_a_synced_clash_with_a_hub_booking_is_stored_and_opens_a_conflict(
    zocdoc, therapist_a, frontdesk_user
):
    hub = appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(hours=1)
    )
    sync_apply(connection=zocdoc, result=FetchResult([event("a")]))
    conflict = Conflict.objects.get(kind="overlap", status="open")
    assert hub.pk in conflict.appointments.values_list("pk", flat=True)


def test_a_per_therapist_connection_needs_no_provider_map(therapist_b):
    conn = Connection.objects.create(platform="kareo", display_name="K", therapist=therapist_b)
    sync_apply(connection=conn, result=FetchResult([event("k", provider_key="whatever")]))
    assert Appointment.objects.get().therapist == therapist_b


def test_a_record_missing_from_one_complete_read_comes_back_when_it_reappears(zocdoc):
    sync_apply(connection=zocdoc, result=FetchResult([event("a"), event("b", 2)]))
    sync_apply(connection=zocdoc, result=FetchResult([event("a")], complete_window=WINDOW))
    back = sync_apply(
        connection=zocdoc, result=FetchResult([event("a"), event("b", 2)], complete_window=WINDOW)
    )
    assert back.updated == 1
    assert Appointment.objects.get(external_id="b").status == "scheduled"
    assert ExternalRecord.objects.get(external_id="b").tombstone_reason == ""


def test_a_ledger_row_whose_appointment_was_deleted_is_relinked_not_duplicated(zocdoc):
    sync_apply(connection=zocdoc, result=FetchResult([event("a")]))
    Appointment.objects.filter(external_id="a").delete()  # the ledger keeps the row, appointment=NULL
    counts = sync_apply(
        connection=zocdoc, result=FetchResult([event("a", 2, version="2026-11-21T00:00:00Z")])
    )
    assert counts.created == 1
    rec = ExternalRecord.objects.get(external_id="a")
    assert rec.appointment == Appointment.objects.get(external_id="a")


# --- external busy time ---------------------------------------------------------------------------


@pytest.fixture
def calendar(therapist_a):
    return Connection.objects.create(platform="google", display_name="Google", therapist=therapist_a)


def busy(eid: str, hours: int = 0, **kw) -> ExternalEvent:
    return event(eid, hours, busy_only=True, patient_key="", **kw)


def test_busy_time_becomes_busy_blocks_without_details_and_opens_external_busy_conflicts(
    calendar, therapist_a, frontdesk_user
):
    booked = appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
    )
    counts = sync_apply(connection=calendar, result=FetchResult([busy("g1"), busy("g2", 3)]))
    assert (counts.created, counts.errors) == (2, [])
    assert not Appointment.objects.filter(connection=calendar).exists()
    block = BusyBlock.objects.get(external_id="g1")
    assert (block.therapist, block.source_system, block.start) == (therapist_a, "google", SLOT)
    assert ExternalRecord.objects.get(external_id="g1").busy_block == block
    conflict = Conflict.objects.get(kind="external_busy", status="open")
    assert set(conflict.appointments.all()) == {booked} and set(conflict.busy_blocks.all()) == {block}
    # Applying the same batch again changes nothing.
    again = sync_apply(connection=calendar, result=FetchResult([busy("g1"), busy("g2", 3)]))
    assert (again.unchanged, BusyBlock.objects.count()) == (2, 2)


def test_a_moved_busy_block_follows_and_its_conflict_closes(calendar, therapist_a, frontdesk_user):
    appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
    )
    sync_apply(connection=calendar, result=FetchResult([busy("g1")]))
    assert Conflict.objects.filter(status="open").count() == 1
    moved = sync_apply(
        connection=calendar, result=FetchResult([busy("g1", 2, version="2026-11-21T10:00:00Z")])
    )
    assert moved.updated == 1 and BusyBlock.objects.get().start == SLOT + timedelta(hours=2)
    assert not Conflict.objects.filter(status="open").exists()


def test_busy_blocks_go_only_on_a_tombstone_or_a_complete_read_and_come_back(calendar, therapist_a):
    sync_apply(connection=calendar, result=FetchResult([busy("g1"), busy("g2", 3), busy("g3", 48)]))
    # A partial (incremental) batch without g2 deletes nothing.
    sync_apply(connection=calendar, result=FetchResult([busy("g1")]))
    assert BusyBlock.objects.count() == 3
    gone = sync_apply(connection=calendar, result=FetchResult([busy("g1", deleted=True)]))
    assert gone.cancelled == 1 and not BusyBlock.objects.filter(external_id="g1").exists()
    assert ExternalRecord.objects.get(external_id="g1").tombstone_reason
    # A complete read of a window that holds g2 but not g3 (two days later) removes only g2.
    window = (SLOT - timedelta(days=1), SLOT + timedelta(days=1))
    full = sync_apply(connection=calendar, result=FetchResult([], complete_window=window))
    assert full.cancelled == 1 and set(BusyBlock.objects.values_list("external_id", flat=True)) == {"g3"}
    back = sync_apply(connection=calendar, result=FetchResult([busy("g1", version="2026-11-22T10:00:00Z")]))
    assert back.created == 1 and BusyBlock.objects.filter(external_id="g1").exists()
    assert ExternalRecord.objects.filter(external_id="g1").count() == 1


def test_recurring_busy_instances_are_separate_blocks(calendar):
    instances = [busy("weekly", 24 * 7 * n, recurrence_id=f"2026120{7 + n}T150000Z") for n in range(2)]
    assert sync_apply(connection=calendar, result=FetchResult(instances)).created == 2
    assert BusyBlock.objects.filter(external_id__startswith="weekly/").count() == 2


def test_one_occurrence_missing_from_a_complete_read_is_cancelled_alone(zocdoc):
    series = [event("weekly", 24 * 7 * n, recurrence_id=f"occ-{n}") for n in range(3)]
    sync_apply(connection=zocdoc, result=FetchResult(series))
    sync_apply(connection=zocdoc, result=FetchResult([series[0], series[2]], complete_window=WINDOW))
    assert dict(Appointment.objects.values_list("recurrence_id", "status")) == {
        "occ-0": "scheduled",
        "occ-1": "cancelled",
        "occ-2": "scheduled",
    }
