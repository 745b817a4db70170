"""iCalendar export: single appointments, filtered exports and the per-therapist feed, parsed back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from audit.models import AuditLog
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from scheduler.models import Appointment, CalendarFeedToken, Office, Service
from scheduler.services import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    calendar_feed_token_create,
    patient_create,
    therapist_create,
)

API = "/api/v1"
NY = ZoneInfo("America/New_York")
MON = datetime(2026, 12, 7, 10, 0, tzinfo=NY)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = api_token_issue(actor=None, user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def book(therapist, start, minutes=50, actor=None, **kw):
    return appointment_book(
        actor=actor, therapist=therapist, start=start, end=start + timedelta(minutes=minutes), **kw
    )


def events(body: bytes) -> list[icalendar.Event]:
    cal = icalendar.Calendar.from_ical(body)
    assert not any(c.errors for c in cal.walk()), [c.errors for c in cal.walk()]
    return list(cal.walk("VEVENT"))


def by_uid(body: bytes) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in events(body)}


def test_one_appointment_exports_as_correct_icalendar(frontdesk_user, therapist_a, settings):
    settings.ICS_ALARM_MINUTES = [30, 1440]
    appt = book(therapist_a, MON, actor=frontdesk_user)
    desk = client_for(frontdesk_user)
    response = desk.get(f"{API}/appointments/{appt.pk}/ical")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(response.content)
    assert str(cal["METHOD"]) == "PUBLISH" and str(cal["VERSION"]) == "2.0"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == f"{appt.uid}@clinic-hub"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert event["DTSTART"].dt == MON and event["DTEND"].dt == MON + timedelta(minutes=50)
    assert event["DTSTAMP"].dt.tzinfo is not None
    assert int(event["SEQUENCE"]) == 0 and str(event["STATUS"]) == "TENTATIVE"
    triggers = sorted(a["TRIGGER"].dt for a in event.walk("VALARM"))
    assert triggers == [timedelta(minutes=-1440), timedelta(minutes=-30)]
    assert all(str(a["ACTION"]) == "DISPLAY" for a in event.walk("VALARM"))


def test_the_uid_is_stable_and_sequence_rises_with_every_change(frontdesk_user, therapist_a):
    appt = book(therapist_a, MON, actor=frontdesk_user)
    desk = client_for(frontdesk_user)
    first = events(desk.get(f"{API}/appointments/{appt.pk}/ical").content)[0]
    appointment_reschedule(actor=frontdesk_user, appointment=appt, start=MON + timedelta(hours=1))
    second = events(desk.get(f"{API}/appointments/{appt.pk}/ical").content)[0]
    appointment_cancel(actor=frontdesk_user, appointment=appt)
    third = events(desk.get(f"{API}/appointments/{appt.pk}/ical").content)[0]
    assert str(first["UID"]) == str(second["UID"]) == str(third["UID"])
    assert int(first["SEQUENCE"]) < int(second["SEQUENCE"]) < int(third["SEQUENCE"])
    assert second["DTSTART"].dt == MON + timedelta(hours=1)
    # Cancelled: kept, marked, no reminder, no longer blocking time.
    assert str(third["STATUS"]) == "CANCELLED" and str(third["TRANSP"]) == "TRANSPARENT"
    assert not third.walk("VALARM")


@pytest.mark.parametrize(
    ("zone", "first_monday", "offsets"),
    [
        # US: clocks go back on 1 Nov 2026.
        ("America/New_York", date(2026, 10, 19), [-4, -4, -5, -5]),
        # EU: clocks go back on 25 Oct 2026.
        ("Europe/Berlin", date(2026, 10, 12), [2, 2, 1, 1]),
        # Australia: clocks go forward on 4 Oct 2026.
        ("Australia/Sydney", date(2026, 9, 21), [10, 10, 11, 11]),
        # No DST at all.
        ("America/Phoenix", date(2026, 10, 19), [-7, -7, -7, -7]),
    ],
)
def test_a_weekly_series_keeps_its_local_time_across_a_clock_change(db, zone, first_monday, offsets):
    therapist = therapist_create(actor=None, name="Zed", email=f"zed-{zone[:3]}@example.test", timezone=zone)
    tz = ZoneInfo(zone)
    for week in range(4):
        day = first_monday + timedelta(weeks=week)
        book(therapist, datetime(day.year, day.month, day.day, 10, 0, tzinfo=tz))
    from scheduler.ical import appointments_to_ics

    body = appointments_to_ics(Appointment.objects.order_by("start"))
    cal = icalendar.Calendar.from_ical(body)
    assert [str(t["TZID"]) for t in cal.walk("VTIMEZONE")] == [zone]
    starts = [e["DTSTART"] for e in cal.walk("VEVENT")]
    assert all(s.params["TZID"] == zone for s in starts)
    assert [(s.dt.hour, s.dt.minute) for s in starts] == [(10, 0)] * 4
    assert [s.dt.utcoffset() / timedelta(hours=1) for s in starts] == offsets
    # The VTIMEZONE in the file says the same as the IANA zone, for a client that reads only the file.
    (vtimezone,) = cal.walk("VTIMEZONE")
    from_file = vtimezone.to_tz()
    assert [s.dt.replace(tzinfo=from_file).utcoffset() / timedelta(hours=1) for s in starts] == offsets
    # And the text on the wire is the wall-clock time, whatever the offset.
    assert body.count(f"DTSTART;TZID={zone}:".encode()) == 4
    assert all(b"T100000\r\n" in line for line in body.split(b"DTSTART;")[1:] if line.startswith(b"TZID"))


def test_staff_exports_carry_no_phi_and_patient_exports_only_the_visit(
    frontdesk_user, therapist_a, office, session_service
):
    patient = patient_create(actor=frontdesk_user, name="Iris Icalson", email="iris@example.test")
    Office.objects.filter(pk=office.pk).update(address="12 Main St")
    appt = book(
        therapist_a,
        MON,
        actor=frontdesk_user,
        patient_ref=patient.ref,
        office=office,
        service=session_service,
    )
    desk = client_for(frontdesk_user)
    staff = desk.get(f"{API}/appointments/{appt.pk}/ical").content.decode()
    for secret in ("Iris", "iris@", patient.ref, "Therapy session", "Thea", "Main St"):
        assert secret not in staff
    assert "SUMMARY:Appointment" in staff and "CLASS:PRIVATE" in staff
    own = desk.get(f"{API}/appointments/{appt.pk}/ical?audience=patient").content.decode()
    event = events(own.encode())[0]
    assert str(event["SUMMARY"]) == "Therapy session with Thea Alvarez"
    assert str(event["LOCATION"]) == "Main Street, 12 Main St"
    assert "Iris" not in own and patient.ref not in own
    assert AuditLog.objects.filter(action="scheduler.appointment.exported_for_patient").count() == 1


def test_a_therapist_may_not_export_for_the_patient(therapist_a):
    appt = book(therapist_a, MON)
    mine = client_for(therapist_a.user)
    assert mine.get(f"{API}/appointments/{appt.pk}/ical").status_code == 200
    refused = mine.get(f"{API}/appointments/{appt.pk}/ical?audience=patient")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert mine.get(f"{API}/appointments/{appt.pk}/ical?audience=all").status_code == 400


def test_filtered_export_follows_the_list_filters_and_permissions(frontdesk_user, therapist_a, therapist_b):
    a1 = book(therapist_a, MON)
    a2 = book(therapist_a, MON + timedelta(days=1))
    appointment_cancel(actor=None, appointment=a2)
    b1 = book(therapist_b, datetime(2026, 12, 8, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    start, end = "2026-12-01T00:00:00%2B00:00", "2026-12-31T00:00:00%2B00:00"
    url = f"{API}/appointments/ical?start={start}&end={end}"
    desk = client_for(frontdesk_user)
    body = desk.get(url).content
    assert set(by_uid(body)) == {f"{a.uid}@clinic-hub" for a in (a1, a2, b1)}
    cal = icalendar.Calendar.from_ical(body)
    assert {str(t["TZID"]) for t in cal.walk("VTIMEZONE")} == {"America/New_York", "Europe/Berlin"}
    only = by_uid(desk.get(f"{url}&therapist={therapist_a.pk}&status=scheduled").content)
    assert set(only) == {f"{a1.uid}@clinic-hub"}
    # A therapist sees only their own, whatever they ask for.
    theirs = by_uid(client_for(therapist_b.user).get(f"{url}&therapist={therapist_a.pk}").content)
    assert theirs == {}
    assert set(by_uid(client_for(therapist_b.user).get(url).content)) == {f"{b1.uid}@clinic-hub"}
    too_long = desk.get(f"{API}/appointments/ical?start={start}&end=2028-06-01T00:00:00%2B00:00")
    assert too_long.status_code == 400 and "400 days" in too_long.json()["error"]["message"]
    assert desk.get(f"{API}/appointments/ical?start={start}").status_code == 400


# --- the feed ---------------------------------------------------------------------------------------


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def feed_path(url: str) -> str:
    return url.split("testserver", 1)[1]


def test_a_feed_url_serves_the_therapists_appointments_without_login(frozen, frontdesk_user, therapist_a):
    patient = patient_create(actor=frontdesk_user, name="Paula Feedwell")
    mine = book(therapist_a, MON, patient_ref=patient.ref)
    cancelled = book(therapist_a, MON + timedelta(days=1))
    appointment_cancel(actor=None, appointment=cancelled)
    book(therapist_a, MON + timedelta(days=500))  # outside the window
    created = client_for(frontdesk_user).post(f"{API}/therapists/{therapist_a.pk}/calendar-feed/")
    assert created.status_code == 201
    url = created.json()["url"]
    assert url.startswith("http://testserver/feeds/") and url.endswith(".ics")
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert not CalendarFeedToken.objects.filter(token_hash=token).exists()  # only a hash is stored
    response = Client().get(feed_path(url))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    text = response.content.decode()
    uids = by_uid(response.content)
    assert set(uids) == {f"{mine.uid}@clinic-hub", f"{cancelled.uid}@clinic-hub"}
    assert str(uids[f"{cancelled.uid}@clinic-hub"]["STATUS"]) == "CANCELLED"
    assert "Paula" not in text and patient.ref not in text and "Thea" not in text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in text
    assert AuditLog.objects.filter(action="scheduler.calendar_feed.created").exists()


def test_feed_tokens_rotate_and_revoke(frozen, frontdesk_user, therapist_a):
    desk = client_for(frontdesk_user)
    first = feed_path(desk.post(f"{API}/therapists/{therapist_a.pk}/calendar-feed/").json()["url"])
    second = feed_path(desk.post(f"{API}/therapists/{therapist_a.pk}/calendar-feed/").json()["url"])
    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200
    assert desk.delete(f"{API}/therapists/{therapist_a.pk}/calendar-feed/").status_code == 204
    assert Client().get(second).status_code == 404
    assert Client().get("/feeds/not-a-token.ics").status_code == 404
    assert AuditLog.objects.filter(action="scheduler.calendar_feed.revoked").count() == 1


def test_a_therapist_manages_only_their_own_feed(frozen, therapist_a, therapist_b, outsider):
    own = client_for(therapist_a.user).post(f"{API}/therapists/{therapist_a.pk}/calendar-feed/")
    assert own.status_code == 201
    other = client_for(therapist_a.user).post(f"{API}/therapists/{therapist_b.pk}/calendar-feed/")
    assert other.status_code == 404
    assert client_for(outsider).post(f"{API}/therapists/{therapist_a.pk}/calendar-feed/").status_code == 404
    assert Client().get(feed_path(own.json()["url"])).status_code == 200


def test_the_feed_is_served_from_cache_until_an_appointment_changes(frozen, therapist_a):
    appt = book(therapist_a, MON)
    _, token = calendar_feed_token_create(actor=None, therapist=therapist_a)
    path = f"/feeds/{token}.ics"
    first = Client().get(path)
    with CaptureQueriesContext(connection) as cached:
        again = Client().get(path)
    assert again.content == first.content and again["ETag"] == first["ETag"]
    # The token and the version stamp; the appointments themselves are not read again.
    assert len(cached.captured_queries) == 2
    assert Client().get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    appointment_reschedule(actor=None, appointment=appt, start=MON + timedelta(hours=2))
    moved = Client().get(path)
    assert moved["ETag"] != first["ETag"]
    assert events(moved.content)[0]["DTSTART"].dt == MON + timedelta(hours=2)

    # A change through the sync path (no scheduling service involved) invalidates it too.
    conn = Connection.objects.create(platform="zocdoc", display_name="Z", therapist=therapist_a)
    external_appointment_upsert(
        connection=conn,
        external_id="zd-1",
        therapist_id=therapist_a.pk,
        start=MON + timedelta(days=1),
        end=MON + timedelta(days=1, minutes=30),
    )
    synced = Client().get(path)
    assert len(events(synced.content)) == 2 and synced["ETag"] != moved["ETag"]


def test_the_feed_of_one_therapist_never_shows_anothers(frozen, therapist_a, therapist_b):
    book(therapist_b, datetime(2026, 12, 8, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    _, token = calendar_feed_token_create(actor=None, therapist=therapist_a)
    assert events(Client().get(f"/feeds/{token}.ics").content) == []


def test_service_rows_in_patient_export_are_looked_up_once(frontdesk_user, therapist_a):
    svc = Service.objects.create(name="Intake", durations=[50])
    appt = book(therapist_a, MON, service=svc)
    body = client_for(frontdesk_user).get(f"{API}/appointments/{appt.pk}/ical?audience=patient").content
    assert str(events(body)[0]["SUMMARY"]) == "Intake with Thea Alvarez"


def test_the_admin_offers_the_download_and_manages_feed_urls(client, frontdesk_user, therapist_a):
    from django.urls import reverse

    appt = book(therapist_a, MON)
    client.force_login(frontdesk_user)
    page = client.get(reverse("admin:scheduler_appointment_change", args=[appt.pk])).content.decode()
    link = f"/api/v1/appointments/{appt.pk}/ical"
    assert f'href="{link}"' in page and f'href="{link}?audience=patient"' in page
    assert client.get(link).status_code == 200  # the admin's session is enough

    url = reverse("admin:scheduler_therapist_changelist")
    done = client.post(
        url, {"action": "create_calendar_feed", "_selected_action": [therapist_a.pk]}, follow=True
    ).content.decode()
    feed_url = done.split("shown once): ", 1)[1].split("<", 1)[0].strip()
    with time_machine.travel(NOW, tick=False):
        assert Client().get(feed_path(feed_url)).status_code == 200
    client.post(url, {"action": "revoke_calendar_feed", "_selected_action": [therapist_a.pk]})
    assert Client().get(feed_path(feed_url)).status_code == 404
