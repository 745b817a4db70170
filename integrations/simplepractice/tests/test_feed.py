"""The SimplePractice feed connector against its emulator over real HTTP, through connection_sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.models import AuditLog
from integrations.base import ConnectorError
from integrations.ics_feed.services import ics_feed_subscribe
from integrations.models import Connection, SyncRun
from integrations.registry import connector_class
from integrations.services import connection_sync, patient_pseudonym
from integrations.simplepractice.connector import SimplePracticeConnector
from integrations.simplepractice.emulator import SimplePracticeEmulator, appointment, serve
from scheduler.models import Appointment, AppointmentStatus, BusyBlock

NY = ZoneInfo("America/New_York")


def day(offset: int, hour: int) -> datetime:
    base = datetime.now(NY).date() + timedelta(days=offset)
    return datetime(base.year, base.month, base.day, hour, 0, tzinfo=NY)


@pytest.fixture
def emulator():
    return SimplePracticeEmulator()


@pytest.fixture
def base_url(emulator):
    server, url = serve(emulator)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def feed(emulator, base_url, therapist_a):
    token = emulator.add_feed()
    emulator.add_appointment(token, appointment(day(1, 9), title="J.D.", uid="sp-1"))
    emulator.add_appointment(token, appointment(day(1, 11), title="Jane Doe", uid="sp-2", telehealth=True))
    emulator.add_appointment(token, appointment(day(2, 9), title="Appointment", uid="sp-3"))
    emulator.add_appointment(token, appointment(day(2, 13), title="Busy", uid="sp-4"))
    emulator.add_appointment(token, appointment(day(3, 15), title="Omar Haddad", uid="sp-5", weekly_count=4))
    emulator.add_appointment(token, appointment(day(4, 9), title="Mei Chen", uid="sp-6", status="CANCELLED"))
    connection = ics_feed_subscribe(
        actor=None,
        therapist=therapist_a,
        url=f"{base_url}/ical/{token}.ics",
        platform="simplepractice",
        display_name="SimplePractice",
    )
    return token, connection


def stored_text() -> str:
    rows = [[a.raw, a.patient_ref, a.external_id] for a in Appointment.objects.all()]
    runs = list(SyncRun.objects.values_list("errors", flat=True))
    audit = list(AuditLog.objects.values_list("details", flat=True))
    return json.dumps([rows, runs, audit], default=str)


def test_a_simplepractice_feed_syncs_without_storing_any_name(emulator, feed):
    token, connection = feed
    run = connection_sync(connection_id=connection.pk)
    assert run.status == "ok", run.errors
    appts = {(a.external_id, a.recurrence_id): a for a in Appointment.objects.all()}
    assert appts[("sp-1", "")].patient_ref == patient_pseudonym("simplepractice", "jd")
    assert appts[("sp-2", "")].patient_ref == patient_pseudonym("simplepractice", "janedoe")
    assert appts[("sp-3", "")].patient_ref == ""  # a generic title names nobody
    weekly = sorted(a.start for (uid, _), a in appts.items() if uid == "sp-5")
    assert len(weekly) == 4 and {t.astimezone(NY).hour for t in weekly} == {15}
    assert ("sp-6", "") not in appts  # cancelled before we ever saw it: nothing to record
    (busy,) = BusyBlock.objects.all()
    assert busy.start == day(2, 13) and busy.external_id == "sp-4"
    text = stored_text()
    for secret in ("J.D.", "Jane", "Doe", "Omar", "Haddad", "Mei", "video.simplepractice", token):
        assert secret not in text


def test_an_event_gone_from_the_feed_is_cancelled_and_audited(emulator, feed):
    token, connection = feed
    connection_sync(connection_id=connection.pk)
    emulator.delete_appointment(token, "sp-1")
    emulator.update_appointment(token, "sp-2", start=day(1, 12))
    emulator.update_appointment(token, "sp-5", weekly_count=2)  # the series was shortened
    run = connection_sync(connection_id=connection.pk)
    assert run.status == "ok" and run.full_read is False  # conditional, but the feed changed
    gone = Appointment.objects.get(external_id="sp-1")
    assert gone.status == AppointmentStatus.CANCELLED
    assert Appointment.objects.get(external_id="sp-2").start == day(1, 12)
    weekly = Appointment.objects.filter(external_id="sp-5").order_by("start")
    assert [a.status for a in weekly] == ["scheduled", "scheduled", "cancelled", "cancelled"]
    assert run.cancelled == 3 and run.updated == 1
    synced = AuditLog.objects.filter(action="integrations.connection.synced").order_by("pk").last()
    assert synced.details["cancelled"] == 3 and synced.details["full_read"] is True


def test_an_unchanged_feed_answers_304_and_changes_nothing(emulator, feed):
    token, connection = feed
    connection_sync(connection_id=connection.pk)
    before = list(Appointment.objects.order_by("pk").values_list("pk", "version", "status"))
    run = connection_sync(connection_id=connection.pk)
    assert run.status == "ok" and run.fetched == 0
    assert emulator.requests[-1][1]["If-None-Match"].startswith('"')
    assert list(Appointment.objects.order_by("pk").values_list("pk", "version", "status")) == before


@pytest.mark.parametrize(
    ("fault", "options", "message"),
    [
        ("server_error", {"status": 503}, "503"),
        ("truncated", {}, "truncated"),
        ("cut_connection", {}, "cut off"),
    ],
)
def test_a_failed_fetch_changes_nothing_and_never_shows_the_secret_url(
    emulator, feed, fault, options, message
):
    token, connection = feed
    connection_sync(connection_id=connection.pk)
    before = list(Appointment.objects.order_by("pk").values_list("pk", "version", "status"))
    emulator.set_fault(fault, **options)
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert run.status == "failed" and message in run.errors[0], run.errors
    assert token not in run.errors[0]
    connection.refresh_from_db()
    assert token not in connection.last_error
    assert list(Appointment.objects.order_by("pk").values_list("pk", "version", "status")) == before
    assert connection_sync(connection_id=connection.pk).status == "ok"  # the next poll recovers


def test_a_timeout_is_a_retryable_error(emulator, feed):
    token, connection = feed
    emulator.set_fault("timeout", seconds=1.5)
    stored = Connection.objects.get(pk=connection.pk)
    stored.credentials = {"url": stored.credentials["url"] + "?key=sekrit-query"}
    connector = SimplePracticeConnector(stored)
    connector.http.timeout = (1.0, 0.5)
    window = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=30))
    with pytest.raises(ConnectorError) as failed:
        connector.fetch(cursor=None, window=window)
    message = failed.value.message
    assert not failed.value.permanent and "timed out" in message
    assert token not in message and "sekrit" not in message and "http://127.0.0.1:" in message


def test_a_feed_without_vtimezone_and_an_oversized_feed(emulator, base_url, therapist_a, settings):
    emulator.vtimezone = False
    token = emulator.add_feed()
    emulator.add_appointment(token, appointment(day(1, 9), title="K.L.", uid="x-1"))
    connection = ics_feed_subscribe(
        actor=None, therapist=therapist_a, url=f"{base_url}/ical/{token}.ics", platform="simplepractice"
    )
    assert connection_sync(connection_id=connection.pk).status == "ok"
    assert Appointment.objects.get(external_id="x-1").start == day(1, 9)
    settings.ICS_IMPORT_MAX_BYTES = 200
    run = connection_sync(connection_id=connection.pk, force_full=True)
    assert run.status == "failed" and "the limit is 200" in run.errors[0]
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ERROR


def test_both_feed_platforms_are_registered():
    assert connector_class("simplepractice") is SimplePracticeConnector
    assert connector_class("ics_feed").platform == "ics_feed"
