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


def test_demo_secrets_are_generated_per_install_never_constants(db, settings):
    """Issue 12 #16: the seeded channel token, webhook keys, client secrets and passwords derive from the
    install's DEMO_SECRET: another install's (or the source's) values do not verify here."""
    from integrations.emulators import (
        google_demo_channel_token,
        google_demo_client,
        google_demo_refresh_token,
        kareo_demo_credentials,
        simplepractice_demo_token,
        zocdoc_demo_client,
        zocdoc_demo_webhook_key,
    )

    def values():
        account = GOOGLE_DEMO_ACCOUNTS[0]
        return [
            google_demo_channel_token(account),
            google_demo_refresh_token(account),
            google_demo_client()["client_secret"],
            zocdoc_demo_client()["client_secret"],
            zocdoc_demo_webhook_key(),
            kareo_demo_credentials()["password"],
            kareo_demo_credentials()["customer_key"],
            simplepractice_demo_token(),
        ]

    settings.DEMO_SECRET = "install-one"
    one = values()
    settings.DEMO_SECRET = "install-two"
    two = values()
    assert all(a != b for a, b in zip(one, two, strict=True)) and len(set(one)) == len(one)
    demo_seed(today=date(2026, 11, 23))
    seeded = Connection.objects.filter(platform="google").order_by("pk").first()
    assert seeded.credentials["channel_token"] == google_demo_channel_token(seeded.config["account"])
    assert google_demo_channel_token(GOOGLE_DEMO_ACCOUNTS[0]) != google_demo_channel_token(
        GOOGLE_DEMO_ACCOUNTS[1]
    )
    keys = [(c.credentials or {}).get("webhook_key") for c in Connection.objects.filter(platform="zocdoc")]
    assert zocdoc_demo_webhook_key() in keys
    for old_constant in ("demo-google-channel-token", "demo-zocdoc-secret", "demo-kareo-pw"):
        assert old_constant not in str([c.credentials for c in Connection.objects.all()])
