from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.core.management import call_command

from conflicts.models import Conflict
from conflicts.services import conflicts_scan
from scheduler.demo import demo_seed
from scheduler.models import Appointment
from scheduler.tests.factories import AppointmentFactory

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def test_a_full_scan_opens_what_writes_could_not_see_and_closes_what_vanished(therapist_a, therapist_b):
    # Rows written behind the services' back (as an import or a data fix would) have no conflicts yet.
    a = AppointmentFactory(therapist=therapist_a, start=SLOT, end=SLOT + timedelta(hours=1))
    b = AppointmentFactory(
        therapist=therapist_a,
        start=SLOT + timedelta(minutes=30),
        end=SLOT + timedelta(hours=2),
        override_reason="x",
    )
    AppointmentFactory(therapist=therapist_b, start=SLOT, end=SLOT + timedelta(hours=1))
    result = conflicts_scan()
    assert result.findings == 1 and len(result.opened) == 1
    conflict = Conflict.objects.get(status="open")
    assert (conflict.kind, set(conflict.appointments.values_list("pk", flat=True))) == (
        "overlap",
        {a.pk, b.pk},
    )

    again = conflicts_scan()
    assert (again.opened, again.closed, again.findings) == ([], [], 1)

    Appointment.objects.filter(pk=b.pk).update(status="cancelled")
    closed = conflicts_scan()
    assert closed.closed == [conflict.pk]
    assert Conflict.objects.get(pk=conflict.pk).resolution == "no_longer_applies"


def test_a_windowed_scan_leaves_conflicts_outside_the_window_alone(therapist_a):
    AppointmentFactory(therapist=therapist_a, start=SLOT, end=SLOT + timedelta(hours=1))
    AppointmentFactory(therapist=therapist_a, start=SLOT, end=SLOT + timedelta(hours=1), override_reason="x")
    conflicts_scan()
    later = SLOT + timedelta(days=30)
    result = conflicts_scan(start=later, end=later + timedelta(days=1))
    assert (result.findings, result.closed) == (0, [])
    assert Conflict.objects.filter(status="open").count() == 1


def test_after_the_demo_seed_a_full_scan_agrees_with_incremental_detection(db, settings):
    demo_seed(today=date(2026, 11, 23))
    before = set(Conflict.objects.filter(status="open").values_list("fingerprint", flat=True))
    result = conflicts_scan()
    assert (result.opened, result.closed) == ([], [])
    assert set(Conflict.objects.filter(status="open").values_list("fingerprint", flat=True)) == before


def test_conflicts_scan_command_reports_counts(therapist_a, capsys):
    AppointmentFactory(therapist=therapist_a, start=SLOT, end=SLOT + timedelta(hours=1))
    AppointmentFactory(therapist=therapist_a, start=SLOT, end=SLOT + timedelta(hours=1), override_reason="x")
    call_command("conflicts_scan")
    assert "1 conflicts found: 1 opened, 0 closed" in capsys.readouterr().out
