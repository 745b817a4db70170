"""The demo: seed_demo connects two therapists to the Google emulator run_emulators serves."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.test import override_settings

from integrations.emulators import GOOGLE_DEMO_ACCOUNTS, LiveGoogleEvents, google_demo_emulator, run_all
from integrations.google.emulator import serve
from integrations.models import Connection
from integrations.services import connection_sync
from scheduler.demo import demo_seed
from scheduler.models import BusyBlock


def test_seed_demo_connects_two_therapists_once_and_their_calendars_sync(db, settings):
    demo_seed(today=date(2026, 11, 23))
    demo_seed(today=date(2026, 11, 23))  # idempotent
    connections = list(Connection.objects.filter(platform="google").order_by("pk"))
    assert [c.therapist.email for c in connections] == list(GOOGLE_DEMO_ACCOUNTS)
    emulator = google_demo_emulator(datetime.now(UTC).date(), "http://127.0.0.1:9/")
    server, url = serve(emulator)
    try:
        with override_settings(
            GOOGLE_CALENDAR_API_ENDPOINT=f"{url}/calendar/v3/",
            GOOGLE_OAUTH_TOKEN_URI=f"{url}/token",
            GOOGLE_OAUTH_CLIENT_ID=emulator.client_id,
            GOOGLE_OAUTH_CLIENT_SECRET=emulator.client_secret,
        ):
            runs = [connection_sync(connection_id=c.pk) for c in connections]
            assert [r.status for r in runs] == ["ok", "ok"], [r.errors for r in runs]
            blocks = BusyBlock.objects.filter(connection__platform="google")
            assert blocks.count() > 10 and {b.therapist_id for b in blocks} == {
                c.therapist_id for c in connections
            }
            # The seeded channel is the one the emulator registered: its notifications verify.
            (channel,) = [
                ch
                for ch in emulator.channels.values()
                if ch["calendar"] == connections[0].credentials["calendar_id"]
            ]
            assert channel["id"] == connections[0].config["channel"]["id"]
            assert channel["resourceId"] == connections[0].config["channel"]["resource_id"]
            assert channel["token"] == connections[0].credentials["channel_token"]
            LiveGoogleEvents(emulator, 60).add_one()
            assert sum(connection_sync(connection_id=c.pk).created for c in connections) == 1
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()


def test_run_all_serves_google_on_its_port():
    servers = run_all(
        ports={"zocdoc": 0, "kareo": 0, "google": 0}, hub_url="http://127.0.0.1:9", live_every=0
    )
    try:
        assert any(
            getattr(s, "emulator", None).__class__.__name__ == "GoogleCalendarEmulator" for s in servers
        )
    finally:
        for server in servers:
            if hasattr(server, "shutdown"):
                server.shutdown()
                server.server_close()
