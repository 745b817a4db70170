"""Issue 12: hostile and odd .ics files (hangs, unbounded expansion, duplicates, malformed rules, PHI in
errors) on every path: the parser, the upload service, the API, the command, the job and a feed's sync."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command

from audit.models import AuditLog
from integrations.ics_feed.parse import ExpansionLimits, IcsError, parse_calendar
from integrations.ics_feed.services import (
    ics_feed_subscribe,
    ics_import_apply,
    ics_import_reap_stale,
    ics_import_retry,
    ics_import_run,
    ics_import_submit,
)
from integrations.ics_feed.tests.test_connector import Feed
from integrations.ics_feed.tests.test_import_api import client_for, upload
from integrations.models import SyncRun
from integrations.services import connection_sync
from integrations.zocdoc.emulator import serve_app
from lib.errors import InvalidInput
from scheduler.models import Appointment, IcsImport

WINDOW = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))


def ics(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def event(*props: str, uid: str = "u1", start: str = "20261005T140000Z") -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261001T000000Z",
        f"DTSTART:{start}",
        *props,
        "END:VEVENT",
    ]


def calendar(*events: list[str], tail: tuple[str, ...] = ("END:VCALENDAR",)) -> bytes:
    return ics("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", *[x for e in events for x in e], *tail)


def parse(data: bytes, **kw):
    return parse_calendar(data, window=WINDOW, default_zone="America/New_York", **kw)


INTERVAL_0 = calendar(event("DTEND:20261005T150000Z", "RRULE:FREQ=DAILY;INTERVAL=0", "SUMMARY:Jane Doe"))
MINUTELY = calendar(event("DTEND:20261005T140100Z", "RRULE:FREQ=MINUTELY;COUNT=2000"))
SECONDLY = calendar(event("DTEND:20261005T140001Z", "RRULE:FREQ=SECONDLY;COUNT=1000000000"))


# --- 1, 12: a rule that never ends or cannot be read is ignored; the event keeps its first instance ---


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;COUNT=-1",
        "FREQ=DAILY;BYHOUR=99",
        "FREQ=WEEKLY;BYDAY=TH;UNTL=20261023",
        "RSCALE=CHINESE;FREQ=YEARLY",
        "FREQ=SOMETIMES",
        "FREQ=DAILY;INTERVAL=x",
        "garbage",
    ],
)
def test_a_malformed_rule_keeps_the_first_instance_with_a_warning_naming_uid_and_line(rule):
    parsed = parse(calendar(event("DTEND:20261005T150000Z", f"RRULE:{rule}", "SUMMARY:Jane Doe")))
    assert [(o.uid, o.recurrence_id) for o in parsed.occurrences] == [("u1", "")]
    (warning,) = parsed.warnings
    assert warning.startswith("line 9: the RRULE of the event UID 'u1' is ignored")
    assert "Jane" not in warning and rule not in warning


def test_interval_0_does_not_hang_the_upload_or_the_api(therapist_a, frontdesk_user):
    result = ics_import_apply(actor=None, therapist=therapist_a, data=INTERVAL_0, window=WINDOW)
    assert result.created == 1 and "RRULE" in result.warnings[0]
    response = upload(client_for(frontdesk_user), therapist_a, data=INTERVAL_0.replace(b"u1", b"u2"))
    assert response.status_code == 201, response.content
    assert response.json()["counts"]["warnings"] == result.warnings[:0] + [
        w.replace("'u1'", "'u2'") for w in result.warnings
    ]


# --- 2: hard limits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [MINUTELY, SECONDLY], ids=["minutely", "secondly"])
def test_too_frequent_occupying_series_are_refused_naming_the_uid_not_the_summary(data, therapist_a):
    with pytest.raises(IcsError, match=r"the event UID 'u1' \(line 4\) repeats every 1 (minute|second);"):
        parse(data)
    with pytest.raises(InvalidInput, match="ICS_IMPORT_MIN_INTERVAL_MINUTES"):
        ics_import_apply(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    assert Appointment.objects.count() == 0


def test_occurrences_closer_than_the_minimum_through_by_parts_are_refused():
    data = calendar(event("DTEND:20261005T140100Z", "RRULE:FREQ=HOURLY;BYMINUTE=0,1,2;COUNT=30"))
    with pytest.raises(IcsError, match="has occurrences 1 minute apart"):
        parse(data)


def test_per_event_and_per_file_caps_and_the_steps_before_the_window():
    daily = calendar(event("DTEND:20261005T150000Z", "RRULE:FREQ=DAILY"))
    assert len(parse(daily).occurrences) == 87
    with pytest.raises(IcsError, match=r"UID 'u1' \(line 4\) has more than 50 occurrences"):
        parse(daily, limits=ExpansionLimits(per_event=50))
    with pytest.raises(IcsError, match="more than 60 occurrences in the window"):
        parse(daily, limits=ExpansionLimits(per_file=60))
    ancient = calendar(event("DTEND:19000101T150000Z", "RRULE:FREQ=HOURLY", start="19000101T140000Z"))
    with pytest.raises(IcsError, match="from long before the window"):
        parse(ancient)


def test_the_time_budget_stops_expansion():
    daily = calendar(event("DTEND:20261005T150000Z", "RRULE:FREQ=DAILY"))
    with pytest.raises(IcsError, match="ICS_IMPORT_EXPANSION_SECONDS"):
        parse(daily, limits=ExpansionLimits(seconds=0))


def test_the_limits_hold_through_the_api_and_a_feed(therapist_a, frontdesk_user):
    response = upload(client_for(frontdesk_user), therapist_a, data=SECONDLY)
    assert response.status_code == 400 and "repeats every 1 second" in response.json()["error"]["message"]
    assert Appointment.objects.count() == 0
    app = Feed(SECONDLY)
    server, url = serve_app(app)
    try:
        with time_machine.travel(datetime(2026, 10, 15, 12, tzinfo=UTC), tick=True):
            connection = ics_feed_subscribe(actor=None, therapist=therapist_a, url=f"{url}/x.ics")
            run = connection_sync(connection_id=connection.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert run.status == SyncRun.Status.FAILED and "repeats every 1 second" in json.dumps(run.errors)
    assert Appointment.objects.count() == 0


def test_interval_0_in_a_feed_does_not_hang_the_sync(therapist_a):
    app = Feed(INTERVAL_0)
    server, url = serve_app(app)
    try:
        with time_machine.travel(datetime(2026, 10, 1, 12, tzinfo=UTC), tick=True):
            connection = ics_feed_subscribe(actor=None, therapist=therapist_a, url=f"{url}/x.ics")
            run = connection_sync(connection_id=connection.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert run.status != SyncRun.Status.FAILED, run.errors
    assert Appointment.objects.filter(external_id="u1").count() == 1


# --- 6: duplicates, all-or-nothing ---------------------------------------------------------------------


def test_a_repeated_uid_keeps_the_later_sequence_then_dtstamp_with_a_warning(therapist_a):
    data = calendar(
        event("DTEND:20261005T150000Z", "SEQUENCE:2"),
        event("DTEND:20261005T160000Z", "SEQUENCE:1", start="20261005T150000Z"),
        event("DTEND:20261006T150000Z", "RRULE:FREQ=WEEKLY;COUNT=2", uid="s", start="20261006T140000Z"),
        event("RECURRENCE-ID:20261013T140000Z", "DTEND:20261013T170000Z", uid="s", start="20261013T160000Z"),
        [
            *event(
                "RECURRENCE-ID:20261013T140000Z", "DTEND:20261013T190000Z", uid="s", start="20261013T180000Z"
            )[:2],
            "DTSTAMP:20261002T000000Z",
            "DTSTART:20261013T180000Z",
            "RECURRENCE-ID:20261013T140000Z",
            "DTEND:20261013T190000Z",
            "END:VEVENT",
        ],
    )
    result = ics_import_apply(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    assert result.created == 3 and len(result.warnings) == 2
    single = Appointment.objects.get(external_id="u1")
    assert single.start == datetime(2026, 10, 5, 14, tzinfo=UTC)  # SEQUENCE 2 beat the later SEQUENCE 1
    moved = Appointment.objects.get(external_id="s", recurrence_id="20261013T140000Z")
    assert moved.start == datetime(2026, 10, 13, 18, tzinfo=UTC)  # the later DTSTAMP
    assert (
        "is given again (first at line 4)" in result.warnings[0]
        and "same RECURRENCE-ID" in result.warnings[1]
    )


def test_the_apply_is_all_or_nothing(therapist_a, monkeypatch):
    events = [
        event("DTEND:20261005T150000Z", uid=f"e{i}", start=f"202610{5 + i % 20:02d}T140000Z")
        for i in range(30)
    ]
    data = calendar(*events)
    from integrations.ics_feed import services

    calls = []
    real = services.sync_apply

    def failing(**kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(**kw)

    monkeypatch.setattr(services, "APPLY_CHUNK", 10)
    monkeypatch.setattr(services, "sync_apply", failing)
    with pytest.raises(RuntimeError):
        ics_import_apply(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    assert Appointment.objects.count() == 0


def test_the_duplicate_uid_from_the_issue_through_the_api(therapist_a, frontdesk_user):
    data = calendar(event("DTEND:20261005T150000Z"), event("DTEND:20261005T160000Z"))
    response = upload(client_for(frontdesk_user), therapist_a, data=data)
    assert response.status_code == 201, response.content
    assert Appointment.objects.count() == 1 and len(response.json()["counts"]["warnings"]) == 1


# --- 11: no values in errors, no filenames in the audit ---------------------------------------------------


def test_a_refused_file_names_line_and_property_never_the_value(therapist_a, frontdesk_user):
    bad = calendar(
        event("DTEND:20261005T150000Z"), tail=("Jane Doe 555-0100 jane@example.com", "END:VCALENDAR")
    )
    response = upload(
        client_for(frontdesk_user),
        therapist_a,
        data=bad,
    )
    assert response.status_code == 400
    stored = json.dumps([response.json(), list(IcsImport.objects.values_list("error", "counts"))])
    assert "line 10" in stored
    for secret in ("Jane", "555-0100", "jane@"):
        assert secret not in stored
    bad_dt = calendar(event("DTEND:2026JaneDoe"))
    with pytest.raises(InvalidInput) as refused:
        ics_import_apply(actor=None, therapist=therapist_a, data=bad_dt, window=WINDOW)
    assert "DTEND" in refused.value.message and "Jane" not in refused.value.message


def test_the_filename_is_neither_audited_nor_stored_in_plain_text(therapist_a, frontdesk_user):
    from django.db import connection

    client = client_for(frontdesk_user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {
        "file": SimpleUploadedFile("jane-doe-sessions.ics", calendar(event("DTEND:20261005T150000Z"))),
        "therapist": therapist_a.pk,
        "window_start": "2026-10-01",
        "window_end": "2026-12-31",
    }
    response = client.post("/api/v1/imports/ics", body, format="multipart")
    assert response.status_code == 201 and response.json()["filename"] == "jane-doe-sessions.ics"
    assert "jane" not in json.dumps(list(AuditLog.objects.values_list("details", flat=True)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT filename FROM scheduler_icsimport")
        assert "jane" not in cursor.fetchone()[0]


# --- leniency of calendar apps ------------------------------------------------------------------------------


def test_content_after_the_calendar_and_a_misspelt_end_are_read_with_a_warning():
    after = parse(calendar(event("DTEND:20261005T150000Z"), tail=("END:VCALENDAR", "-- sent from my phone")))
    assert len(after.occurrences) == 1 and after.warnings == [
        "line 11: content after END:VCALENDAR, ignored."
    ]
    misspelt = parse(calendar(event("DTEND:20261005T150000Z"), tail=("END:VCALENDARD",)))
    assert len(misspelt.occurrences) == 1 and "misspelt END:VCALENDAR" in misspelt.warnings[0]
    with pytest.raises(IcsError, match="truncated"):
        parse(calendar(event("DTEND:20261005T150000Z")[:-1], tail=()))


def test_a_repeated_single_valued_property_keeps_the_first():
    parsed = parse(calendar(event("DTEND:20261005T150000Z", "DTSTART:20261006T140000Z")))
    assert parsed.occurrences[0].start == datetime(2026, 10, 5, 14, tzinfo=UTC)
    assert "DTSTART is given twice" in parsed.warnings[0]


# --- 13: stale jobs are failed and can be retried --------------------------------------------------------


def test_a_dead_job_is_failed_by_beat_and_by_the_api_and_can_be_retried(
    therapist_a, frontdesk_user, settings
):
    from django.conf import settings as conf

    assert conf.CELERY_BEAT_SCHEDULE["ics_import_reap_stale"]["task"] == "ics_import_reap_stale"
    data = calendar(event("DTEND:20261005T150000Z"))
    settings.ICS_IMPORT_BACKGROUND_BYTES = 10  # queued for a worker that never comes
    with time_machine.travel(datetime(2026, 10, 1, 12, tzinfo=UTC)):
        job = ics_import_submit(actor=None, therapist=therapist_a, data=data, window=WINDOW)
        IcsImport.objects.filter(pk=job.pk).update(
            status=IcsImport.Status.RUNNING, progress_at=datetime.now(UTC)
        )
        other = ics_import_submit(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    client = client_for(frontdesk_user)
    with time_machine.travel(datetime(2026, 10, 1, 12, 29, tzinfo=UTC)):
        assert ics_import_reap_stale() == []
        assert client.get(f"/api/v1/imports/{job.pk}").json()["status"] == "running"
    with time_machine.travel(datetime(2026, 10, 1, 12, 31, tzinfo=UTC)):
        body = client.get(f"/api/v1/imports/{job.pk}").json()
        assert body["status"] == "failed" and "no progress for 30 minutes" in body["error"]
        assert ics_import_reap_stale() == [other.pk]  # the beat task fails the others
        settings.ICS_IMPORT_BACKGROUND_BYTES = 10**6  # the retry runs inline here
        response = client.post(f"/api/v1/imports/{job.pk}/retry/")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "done" and response.json()["attempts"] == 1
    assert Appointment.objects.filter(external_id="u1").count() == 1
    assert IcsImport.objects.get(pk=job.pk).data == ""
    again = client.post(f"/api/v1/imports/{job.pk}/retry/")
    assert again.status_code == 400
    with time_machine.travel(datetime(2026, 10, 3, 13, tzinfo=UTC)):
        ics_import_reap_stale()  # a failed job's file is forgotten after ICS_IMPORT_RETRY_HOURS
    assert IcsImport.objects.get(pk=other.pk).data == ""
    with pytest.raises(InvalidInput, match="no longer kept"):
        ics_import_retry(actor=None, import_id=other.pk)
    assert AuditLog.objects.filter(action="integrations.ics.import_stale").count() == 2


def test_a_job_that_crashes_keeps_its_file_for_a_retry(therapist_a, monkeypatch, settings):
    settings.ICS_IMPORT_BACKGROUND_BYTES = 10
    data = calendar(event("DTEND:20261005T150000Z"))
    job = ics_import_submit(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    from integrations.ics_feed import services

    monkeypatch.setattr(services, "sync_apply", lambda **kw: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        ics_import_run(import_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and base64.b64decode(job.data) == data and Appointment.objects.count() == 0


def test_the_command_refuses_the_issue_reproductions(therapist_a, tmp_path, capsys):
    path = tmp_path / "x.ics"
    path.write_bytes(MINUTELY)
    args = [str(path), "--therapist", "THEA@example.test", "--window-start", "2026-10-01"]
    with pytest.raises(CommandError, match="repeats every 1 minute"):
        call_command("import_ics", *args, "--window-end", "2026-12-31")
    path.write_bytes(INTERVAL_0)
    call_command("import_ics", *args, "--window-end", "2026-12-31")
    assert Appointment.objects.count() == 1
    assert "warning: line 9: the RRULE of the event UID 'u1' is ignored" in capsys.readouterr().out


def test_the_front_desk_retries_a_stale_import_from_the_admin(therapist_a, frontdesk_user, client, settings):
    data = calendar(event("DTEND:20261005T150000Z"))
    settings.ICS_IMPORT_BACKGROUND_BYTES = 10
    with time_machine.travel(datetime(2026, 10, 1, 12, tzinfo=UTC)):
        job = ics_import_submit(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    with time_machine.travel(datetime(2026, 10, 1, 12, 31, tzinfo=UTC)):
        assert ics_import_reap_stale() == [job.pk]
        settings.ICS_IMPORT_BACKGROUND_BYTES = 10**6
        client.force_login(frontdesk_user)
        page = client.get("/admin/scheduler/icsimport/").content.decode()
        assert "Retry selected failed imports" in page
        response = client.post(
            "/admin/scheduler/icsimport/", {"action": "retry", "_selected_action": [job.pk]}, follow=True
        )
    assert "1 import(s) started again." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 1)
    assert Appointment.objects.filter(external_id="u1").count() == 1
