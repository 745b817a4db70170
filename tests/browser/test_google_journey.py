"""Issue 6's browser journey: a therapist connects Google through the consent page, the front desk books,
and the booking appears in the (emulated) Google calendar without patient data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from integrations.google.connector import event_id_for
from integrations.google.tests.conftest import ACCOUNT, served_google, soon
from integrations.models import Connection
from integrations.services import write_queue_drain
from scheduler.services import appointment_book, patient_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def google(settings: Any) -> Any:
    with served_google(settings) as emulator:
        yield emulator


def test_a_therapist_connects_google_and_a_front_desk_booking_reaches_it_without_patient_data(
    google: Any, open_page: Any, therapist_a: Any, frontdesk_user: Any
) -> None:
    page = open_page("thea", "pw-thea-123", "/calendar/")
    page.get_by_role("link", name="Connect Google Calendar").click()
    # Google's consent page (the emulator's), the account preselected from the therapist's email.
    page.wait_for_url(lambda url: url.startswith(google.url))
    page.get_by_label("Account").select_option(ACCOUNT)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("**/integrations/google/calendar/")
    page.get_by_role("button", name="Use this calendar").click()
    page.wait_for_url("**/integrations/google/")
    assert page.locator("#google-status").inner_text() == "OK"
    connection = Connection.objects.get(platform="google", therapist=therapist_a)
    assert connection.write_enabled and connection.credentials["calendar_id"] == ACCOUNT

    patient = patient_create(actor=frontdesk_user, name="Rosa Quintero", email="rosa@example.org")
    start = soon(3)
    appointment = appointment_book(
        actor=frontdesk_user,
        therapist=therapist_a,
        start=start,
        end=start + timedelta(minutes=50),
        patient_ref=patient.ref,
    )
    assert write_queue_drain().sent >= 1
    event = google.get_event(ACCOUNT, event_id_for(appointment.uid))
    assert event["summary"] == "Appointment" and event["visibility"] == "private"
    text = str(event)
    assert "Rosa" not in text and "Quintero" not in text and patient.ref not in text and "rosa@" not in text
    assert not event.get("attendees")
