"""The demo's external platforms: seed_demo connects to the emulators; bookings arrive by sync and webhook."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import PeriodicTask

from integrations.emulators import (
    KAREO_DEMO_RESOURCES,
    KAREO_DEMO_ZONE,
    ZOCDOC_DEMO_PROVIDERS,
    LiveBookings,
    LiveKareoChanges,
    kareo_demo_emulator,
    zocdoc_demo_emulator,
)
from integrations.kareo.emulator import SERVICE_PATH as KAREO_SERVICE_PATH
from integrations.kareo.emulator import serve as serve_kareo
from integrations.models import Connection, WebhookDelivery
from integrations.services import connection_sync
from integrations.zocdoc.emulator import serve
from scheduler.demo import LIVE_KAREO, LIVE_ZOCDOC, demo_seed
from scheduler.models import Appointment, Therapist


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


# --- Kareo / Tebra: no push; the hub's poll brings the changes in ------------------------------------


@pytest.fixture
def seeded_kareo(db, settings):
    demo_seed(today=date(2026, 11, 23))
    return Connection.objects.get(display_name=LIVE_KAREO)


def _point_kareo_at(connection: Connection, url: str) -> None:
    connection.credentials = {**connection.credentials, "wsdl_url": f"{url}{KAREO_SERVICE_PATH}?wsdl"}
    connection.save()


def test_seed_demo_connects_the_live_kareo_account_in_its_practice_zone(seeded_kareo):
    config = seeded_kareo.config
    assert config["timezone"] == KAREO_DEMO_ZONE
    mapped = config["provider_map"]
    assert sorted(mapped) == sorted(KAREO_DEMO_RESOURCES) and len(set(mapped.values())) == 2
    assert set(Therapist.objects.filter(pk__in=mapped.values()).values_list("timezone", flat=True)) == {
        KAREO_DEMO_ZONE
    }
    task = PeriodicTask.objects.get(name=f"sync connection {seeded_kareo.pk}")
    assert task.enabled and task.interval.every >= 5
    demo_seed(today=date(2026, 11, 23))  # idempotent
    assert Connection.objects.filter(display_name=LIVE_KAREO).count() == 1


def test_the_kareo_demo_emulator_is_deterministic_per_day():
    day = date(2026, 11, 23)
    assert kareo_demo_emulator(day).appointments == kareo_demo_emulator(day).appointments
    assert kareo_demo_emulator(day).appointments != kareo_demo_emulator(day + timedelta(days=1)).appointments


def test_kareo_demo_appointments_and_a_live_change_arrive_through_polls(seeded_kareo):
    emulator = kareo_demo_emulator(datetime.now(UTC).date())
    emulator.min_interval = 0  # the test polls back to back
    server, url = serve_kareo(emulator)
    try:
        _point_kareo_at(seeded_kareo, url)
        first = connection_sync(connection_id=seeded_kareo.pk)
        seeded_count = len(emulator.appointments)
        changed = LiveKareoChanges(emulator, every=0).change_one()
        second = connection_sync(connection_id=seeded_kareo.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert first.status == "ok" and first.full_read and first.created == seeded_count > 0
    in_zone = Appointment.objects.filter(connection=seeded_kareo, therapist__timezone=KAREO_DEMO_ZONE)
    assert in_zone.count() == first.created + second.created
    assert second.status == "ok" and not second.full_read
    assert second.created + second.updated + second.cancelled == 1
    # The change is stored as Kareo now has it: London wall time, status mapped.
    stored = Appointment.objects.get(connection=seeded_kareo, external_id=changed["ID"])
    start = datetime.strptime(changed["StartDate"], "%m/%d/%Y %I:%M:%S %p").replace(
        tzinfo=ZoneInfo(KAREO_DEMO_ZONE)
    )
    assert stored.start == start
    assert stored.status == {"Cancelled": "cancelled", "Confirmed": "confirmed"}.get(
        changed["ConfirmationStatus"],
        "scheduled",  # Scheduled, ReminderSent
    )


def _stop(servers):
    for server in servers:
        if hasattr(server, "shutdown"):
            server.shutdown()
            server.server_close()


def test_run_emulators_serves_a_platform_from_a_scenario_file(tmp_path):
    from django.core.management import CommandError, call_command

    from integrations.emulators import run_all

    servers = run_all(
        ports={"zocdoc": 0, "kareo": 0, "google": 0},
        hub_url="http://127.0.0.1:9",
        live_every=0,
        scenarios={"kareo": "integrations/kareo/scenarios/demo.json"},
    )
    try:
        kareo = next(
            s.emulator for s in servers if type(getattr(s, "emulator", None)).__name__ == "KareoEmulator"
        )
        assert set(kareo.appointments) == {"884221", "884222", "884223"}
    finally:
        _stop(servers)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(CommandError, match="not a JSON object"):
        call_command("run_emulators", "--scenario", f"zocdoc={bad}", "--live-every", "0")
    with pytest.raises(CommandError, match="PLATFORM=FILE"):
        call_command("run_emulators", "--scenario", "zocdoc")


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


def test_run_all_serves_the_simplepractice_feed():
    from integrations.emulators import run_all, simplepractice_demo_token

    servers = run_all(
        ports={"zocdoc": 0, "kareo": 0, "google": 0, "simplepractice": 0},
        hub_url="http://127.0.0.1:9",
        live_every=0,
    )
    try:
        (feed,) = [
            s for s in servers if type(getattr(s, "emulator", None)).__name__ == "SimplePracticeEmulator"
        ]
        import requests

        url = f"http://127.0.0.1:{feed.server_port}/ical/{simplepractice_demo_token()}.ics"
        response = requests.get(url, timeout=10)
        assert response.status_code == 200 and b"BEGIN:VEVENT" in response.content
    finally:
        for server in servers:
            if hasattr(server, "shutdown"):
                server.shutdown()
                server.server_close()


def test_the_simplepractice_feed_can_come_from_a_scenario_file():
    from pathlib import Path

    import requests

    from integrations.emulators import run_all

    scenario = Path(__file__).resolve().parents[1] / "simplepractice" / "scenarios" / "demo.json"
    servers = run_all(
        ports={"zocdoc": 0, "kareo": 0, "google": 0, "simplepractice": 0},
        hub_url="http://127.0.0.1:9",
        live_every=0,
        scenarios={"simplepractice": str(scenario)},
    )
    try:
        (feed,) = [
            s for s in servers if type(getattr(s, "emulator", None)).__name__ == "SimplePracticeEmulator"
        ]
        url = f"http://127.0.0.1:{feed.server_port}/ical/demo-feed-7f3a9c.ics"  # the scenario's own feed
        body = requests.get(url, timeout=10).content
        assert body.count(b"BEGIN:VEVENT") == 6 and b"UID:sp-scn-5@simplepractice.invalid" in body
        assert b"RRULE:FREQ=WEEKLY;COUNT=6" in body and b"STATUS:CANCELLED" in body
    finally:
        _stop(servers)
