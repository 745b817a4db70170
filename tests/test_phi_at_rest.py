"""No patient name, email, phone or date of birth in plain text anywhere in the database (issue 12 #3: the
Idempotency-Key replay body kept them as plain JSON, forever). Every path that carries a patient's details
is driven, then every column of every table is read raw and searched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tests.test_api import API, SLOT, booking, client_for

NAME = "Zebediah Quarrington"
EMAIL = "zebediah.quarrington@example.org"
PHONE = "+1 212 555 0147"
DOB = "1971-03-09"
NEEDLES = [NAME, "Quarrington", EMAIL, "zebediah.quarrington", PHONE, "2125550147", "555 0147", DOB]

pytestmark = pytest.mark.dbspecific


def _raw_database_text() -> list[tuple[str, str]]:
    """(table, cell text) for every non-null cell of every table, as stored (no decryption)."""
    qn = connection.ops.quote_name
    cells = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(include_views=False):
            cursor.execute(f"SELECT * FROM {qn(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if value is None:
                        continue
                    text = (
                        value.decode("utf-8", "replace")
                        if isinstance(value, bytes | memoryview)
                        else str(value)
                    )
                    cells.append((table, text))
    return cells


def test_no_patient_detail_is_stored_in_plain_text_in_any_table(
    admin_user, frontdesk_user, therapist_a, client
):
    desk = client_for(frontdesk_user)
    details = {"name": NAME, "date_of_birth": DOB, "email": EMAIL, "phone": PHONE}
    # The API, with an Idempotency-Key (and its replay)
    first = desk.post(f"{API}/patients/", details, format="json", HTTP_IDEMPOTENCY_KEY="new-patient-1")
    assert first.status_code == 201, first.content
    again = desk.post(f"{API}/patients/", details, format="json", HTTP_IDEMPOTENCY_KEY="new-patient-1")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    ref = first.json()["ref"]
    assert desk.get(f"{API}/patients/{ref}/").json()["name"] == NAME  # an audited read
    # A booking for them, and the patient's own calendar file
    appt = desk.post(
        f"{API}/appointments/",
        booking(therapist_a, patient_ref=ref),
        format="json",
        HTTP_IDEMPOTENCY_KEY="b-1",
    )
    assert appt.status_code == 201, appt.content
    ics = desk.get(f"{API}/appointments/{appt.json()['id']}/ical", {"audience": "patient"})
    assert ics.status_code == 200
    # The admin: a second patient added, then changed
    client.force_login(admin_user)
    added = client.post(
        "/admin/scheduler/patient/add/",
        {"name": f"{NAME} Jr", "date_of_birth": "", "email": f"jr.{EMAIL}", "phone": ""},
    )
    assert added.status_code == 302, added.content.decode()[:500]
    # An .ics whose events and filename carry the name (a calendar export from a therapist's own app)
    cal = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:phi-1@example.org\r\n"
        f"DTSTAMP:20261101T000000Z\r\nDTSTART:{(SLOT + timedelta(days=1)):%Y%m%dT%H%M%SZ}\r\n"
        f"DTEND:{(SLOT + timedelta(days=1, hours=1)):%Y%m%dT%H%M%SZ}\r\n"
        f"SUMMARY:{NAME} intake\r\nDESCRIPTION:{EMAIL} {PHONE} born {DOB}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    upload = desk.post(
        f"{API}/imports/ics",
        {
            "file": SimpleUploadedFile(f"{NAME}.ics", cal, content_type="text/calendar"),
            "therapist": therapist_a.pk,
            "window_start": "2026-11-01",
            "window_end": "2026-12-31",
        },
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="imp-1",
    )
    assert upload.status_code in (200, 201, 202), upload.content

    leaks = [
        (table, needle, text[:80])
        for table, text in _raw_database_text()
        for needle in NEEDLES
        if needle.lower() in text.lower()
    ]
    assert leaks == []


def test_a_refused_date_of_birth_is_not_echoed_in_the_error(frontdesk_user):
    response = client_for(frontdesk_user).post(
        f"{API}/patients/", {"name": "X", "date_of_birth": "1971-02-30"}, format="json"
    )
    assert response.status_code == 400 and "1971-02-30" not in response.content.decode()
