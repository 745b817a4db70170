"""Uploading .ics files: through sync_apply, idempotent, refused as a whole when malformed, no PHI stored."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditLog
from conflicts.models import Conflict
from integrations.ics_feed.services import ics_import_apply, ics_upload_connection
from integrations.models import Connection, ExternalRecord
from lib.errors import InvalidInput
from scheduler.models import Appointment, AppointmentStatus, BusyBlock
from scheduler.services import appointment_book

FIXTURES = Path(__file__).parent / "fixtures"
WINDOW = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
NY = ZoneInfo("America/New_York")
GOOGLE = (FIXTURES / "google.ics").read_bytes()


def run(therapist, data=GOOGLE, **kw):
    return ics_import_apply(actor=None, therapist=therapist, data=data, window=WINDOW, **kw)


def everything_stored() -> str:
    """Every place an import writes, decrypted, as text: names must be in none of it."""
    rows = [[a.raw, a.patient_ref, a.external_id, a.recurrence_id] for a in Appointment.objects.all()] + [
        [r.version, r.external_id, r.tombstone_reason] for r in ExternalRecord.objects.all()
    ]
    audit = list(AuditLog.objects.values_list("details", flat=True))
    return json.dumps([rows, audit, list(Connection.objects.values_list("config", "display_name"))])


def test_an_upload_becomes_appointments_through_the_ledger(therapist_a):
    result = run(therapist_a)
    # Five series occurrences (6 Mondays - EXDATE), the single event; the all-day event is busy time.
    assert (result.created, result.updated, result.cancelled, result.errors) == (7, 0, 0, [])
    appts = Appointment.objects.filter(source_system="ics_feed").order_by("start")
    assert appts.count() == 6
    (block,) = BusyBlock.objects.all()
    assert (block.start, block.end) == (datetime(2026, 10, 26, tzinfo=NY), datetime(2026, 10, 27, tzinfo=NY))
    assert block.therapist == therapist_a and block.source_system == "ics_feed"
    series = [a for a in appts if a.external_id.startswith("3kq0")]
    assert [a.start.astimezone(NY).strftime("%m-%d %H:%M") for a in series] == [
        "10-19 10:00",
        "10-26 10:00",
        "11-09 14:00",
        "11-16 10:00",
        "11-23 10:00",
    ]
    assert {a.recurrence_id for a in series} >= {"20261019T140000Z", "20261109T150000Z"}
    connection = ics_upload_connection(therapist=therapist_a)
    assert connection.status == Connection.Status.PAUSED and connection.display_name == "Uploaded .ics"
    assert all(a.connection_id == connection.pk for a in appts)
    assert AuditLog.objects.filter(action="integrations.ics.imported").count() == 1
    stored = everything_stored()
    for name in ("Jane", "Doe", "Bob", "Roe", "anxiety", "jane.doe@example.com", "Room 2", "Conference"):
        assert name not in stored


def test_reimporting_the_same_file_changes_nothing(therapist_a):
    run(therapist_a)
    before = list(Appointment.objects.order_by("pk").values_list("pk", "version", "start", "status"))
    again = run(therapist_a)
    assert (again.created, again.updated, again.cancelled, again.unchanged) == (0, 0, 0, 7)
    assert list(Appointment.objects.order_by("pk").values_list("pk", "version", "start", "status")) == before


def test_a_changed_file_updates_in_place_and_cancels_only_what_it_marks(therapist_a):
    run(therapist_a)
    single = Appointment.objects.get(external_id="0single1utc@google.com")
    changed = (
        GOOGLE.replace(b"20261021T190000Z", b"20261021T180000Z")  # the single event moved an hour earlier
        .replace(b"COUNT=6", b"COUNT=5")  # the series' last Monday dropped from the file...
        .replace(
            b"EXDATE;TZID=America/New_York:20261102T100000", b"EXDATE;TZID=America/New_York:20261026T100000"
        )
    )
    result = run(therapist_a, data=changed)
    single.refresh_from_db()
    assert single.start == datetime(2026, 10, 21, 18, tzinfo=UTC) and single.version == 2
    assert Appointment.objects.filter(external_id="0single1utc@google.com").count() == 1
    by_rid = {a.recurrence_id: a for a in Appointment.objects.filter(external_id__startswith="3kq0")}
    # ...the EXDATE it now carries is an explicit "gone": cancelled.
    assert by_rid["20261026T140000Z"].status == AppointmentStatus.CANCELLED
    # An upload is not complete by definition: the occurrence it no longer mentions is left alone.
    assert by_rid["20261123T150000Z"].status == AppointmentStatus.SCHEDULED
    # The 2 Nov occurrence no longer excluded is new.
    assert by_rid["20261102T150000Z"].status == AppointmentStatus.SCHEDULED
    assert (result.created, result.updated, result.cancelled) == (1, 1, 1)


def test_an_imported_event_that_clashes_with_a_booking_opens_a_conflict(therapist_a):
    appointment_book(
        actor=None,
        therapist=therapist_a,
        start=datetime(2026, 10, 21, 15, 30, tzinfo=NY),
        end=datetime(2026, 10, 21, 16, 20, tzinfo=NY),
    )
    run(therapist_a)
    (conflict,) = Conflict.objects.filter(kind="overlap", status="open")
    assert {a.external_id for a in conflict.appointments.all()} == {"", "0single1utc@google.com"}
    # The all-day event is busy time: the series' Monday inside it is flagged against it, not overlapped.
    assert Conflict.objects.filter(kind="external_busy", status="open").exists()


def test_a_malformed_file_is_refused_whole_and_writes_nothing(therapist_a):
    truncated = GOOGLE[: GOOGLE.index(b"END:VCALENDAR") - 20]
    with pytest.raises(InvalidInput) as refused:
        run(therapist_a, data=truncated)
    assert "truncated" in refused.value.message and refused.value.details["line"] > 0
    assert not Appointment.objects.exists() and not Connection.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="integrations.").exists()


def test_the_command_imports_prints_counts_and_refuses_bad_files(therapist_a, tmp_path, capsys):
    path = tmp_path / "cal.ics"
    path.write_bytes(GOOGLE)
    args = [str(path), "--therapist", "THEA@example.test", "--window-start", "2026-10-01"]
    call_command("import_ics", *args, "--window-end", "2026-12-31")
    out = capsys.readouterr().out
    assert "6 events, 10 occurrences" in out and "created 7" in out and "errors 0" in out
    call_command("import_ics", *args, "--window-end", "2026-12-31")
    assert "created 0, updated 0, cancelled 0, unchanged 7" in capsys.readouterr().out
    bad = tmp_path / "bad.ics"
    bad.write_bytes(GOOGLE.replace(b"DTSTART:20261021T190000Z", b"DTSTART:20261021T19000Z"))
    with pytest.raises(CommandError, match=r"line \d+: VEVENT: the value of DTSTART cannot be read"):
        call_command("import_ics", str(bad), "--therapist", therapist_a.email)
    with pytest.raises(CommandError, match="No therapist"):
        call_command("import_ics", str(path), "--therapist", "nobody@example.test")


def test_the_command_window_is_in_whole_local_days(therapist_a, tmp_path, capsys):
    path = tmp_path / "cal.ics"
    path.write_bytes(GOOGLE)
    call_command(
        "import_ics",
        str(path),
        "--therapist",
        therapist_a.email,
        "--window-start",
        "2026-11-16",
        "--window-end",
        "2026-11-16",
    )
    assert "created 1" in capsys.readouterr().out
    (appt,) = Appointment.objects.all()
    assert appt.start.astimezone(NY).date() == date(2026, 11, 16)


def test_a_file_over_the_limit_is_refused(therapist_a, settings, tmp_path):
    settings.ICS_IMPORT_MAX_BYTES = 1000
    path = tmp_path / "cal.ics"
    path.write_bytes(GOOGLE)
    with pytest.raises(CommandError, match="the limit is 1 000"):
        call_command("import_ics", str(path), "--therapist", therapist_a.email)
    with pytest.raises(InvalidInput, match="the limit is 1 000"):
        run(therapist_a, max_bytes=1000)
    assert not Appointment.objects.exists()


def test_as_busy_imports_busy_blocks_idempotently(therapist_a, tmp_path, capsys):
    path = tmp_path / "cal.ics"
    path.write_bytes(GOOGLE)
    args = [str(path), "--therapist", therapist_a.email, "--as-busy"]
    call_command("import_ics", *args, "--window-start", "2026-10-01", "--window-end", "2026-12-31")
    assert "created 7" in capsys.readouterr().out
    assert not Appointment.objects.exists()
    blocks = list(BusyBlock.objects.order_by("start").values_list("start", "end"))
    assert len(blocks) == 7 and blocks[0] == (
        datetime(2026, 10, 19, 14, tzinfo=UTC),
        datetime(2026, 10, 19, 14, 50, tzinfo=UTC),
    )
    call_command("import_ics", *args, "--window-start", "2026-10-01", "--window-end", "2026-12-31")
    assert "created 0, updated 0, cancelled 0, unchanged 7" in capsys.readouterr().out
    assert list(BusyBlock.objects.order_by("start").values_list("start", "end")) == blocks
    assert "Jane" not in everything_stored()


def test_a_window_that_ends_before_it_starts_is_refused(therapist_a, tmp_path):
    path = tmp_path / "cal.ics"
    path.write_bytes(GOOGLE)
    with pytest.raises(CommandError, match="first to its last day"):
        call_command(
            "import_ics",
            str(path),
            "--therapist",
            therapist_a.email,
            "--window-start",
            "2026-12-01",
            "--window-end",
            "2026-11-01",
        )
