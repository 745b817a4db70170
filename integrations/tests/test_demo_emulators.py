"""The demo's external platforms: seed_demo connects to the emulators; bookings arrive by sync and webhook."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django_celery_beat.models import PeriodicTask

from integrations.emulators import ZOCDOC_DEMO_PROVIDERS, LiveBookings, zocdoc_demo_emulator
from integrations.models import Connection, WebhookDelivery
from integrations.services import connection_sync
from integrations.zocdoc.emulator import serve
from scheduler.demo import LIVE_ZOCDOC, demo_seed
from scheduler.models import Appointment


@pytest.fixture
def seeded(db, settings):
    demo_seed(today=date(2026, 11, 23))
    return Connection.objects.get(display_name=LIVE_ZOCDOC)


def _point_at(connection: Connection, url: str) -> None:
    connection.credentials = {**connection.credentials, "base_url": url, "token_url": f"{url}/oauth/token"}
    connection.save()


def test_seed_demo_connects_the_live_zocdoc_account_with_its_own_schedule(seeded):
    mapped = seeded.config["provider_map"]
    assert sorted(mapped) == sorted(ZOCDOC_DEMO_PROVIDERS) and len(set(mapped.values())) == 3
    task = PeriodicTask.objects.get(name=f"sync connection {seeded.pk}")
    assert task.enabled and task.interval.every == 15


def test_the_demo_emulator_bookings_arrive_through_a_sync(seeded):
    emulator = zocdoc_demo_emulator(datetime.now(UTC).date())
    server, url = serve(emulator)
    try:
        _point_at(seeded, url)
        run = connection_sync(connection_id=seeded.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert run.status == "ok" and run.created == len(emulator.appointments) > 0
    assert (
        Appointment.objects.filter(connection=seeded, therapist__timezone="America/New_York").count()
        == run.created
    )


@pytest.mark.django_db(transaction=True)
def test_a_live_booking_is_announced_to_the_hub_by_a_signed_webhook(live_server, settings):
    demo_seed(today=date(2026, 11, 23))
    connection = Connection.objects.get(display_name=LIVE_ZOCDOC)
    emulator = zocdoc_demo_emulator(datetime.now(UTC).date())
    server, url = serve(emulator)
    try:
        _point_at(connection, url)
        booking, status = LiveBookings(emulator, live_server.url, every=0).book_one()
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    assert WebhookDelivery.objects.get(connection=connection).event_ids == [booking["appointment_id"]]
    # Tasks run eagerly in tests: the webhook's early sync has already brought the booking in.
    assert Appointment.objects.filter(connection=connection, external_id=booking["appointment_id"]).exists()


def test_seed_demo_subscribes_a_simplepractice_feed_whose_emulator_serves_it(db, settings):
    from integrations.emulators import simplepractice_demo_emulator
    from integrations.simplepractice.emulator import serve as serve_feed
    from scheduler.demo import LIVE_SIMPLEPRACTICE

    demo_seed(today=date(2026, 11, 23))
    demo_seed(today=date(2026, 11, 23))  # idempotent
    (connection,) = Connection.objects.filter(display_name=LIVE_SIMPLEPRACTICE)
    port = settings.EMULATOR_PORTS["simplepractice"]
    assert connection.platform == "simplepractice" and f":{port}/ical/" in connection.credentials["url"]
    assert PeriodicTask.objects.get(name=f"sync connection {connection.pk}").enabled
    emulator = simplepractice_demo_emulator(datetime.now(UTC).date())
    server, url = serve_feed(emulator)
    try:
        connection.credentials = {
            "url": connection.credentials["url"].replace(f"http://127.0.0.1:{port}", url)
        }
        connection.save()
        run = connection_sync(connection_id=connection.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert run.status == "ok" and run.created > 10, run.errors
    refs = set(Appointment.objects.filter(connection=connection).values_list("patient_ref", flat=True))
    assert all(ref == "" or ref.startswith("simplepractice:") for ref in refs) and len(refs) > 2
