"""The demo's Google connections: the two therapists with logins, connected to their calendars on the
emulator `run_emulators` serves (integrations.emulators), as if each had consented. Idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction

from audit.services import audit_record
from scheduler.models import Therapist

from ..emulators import (
    GOOGLE_DEMO_ACCOUNTS,
    google_demo_channel_id,
    google_demo_channel_token,
    google_demo_refresh_token,
)
from ..models import Connection
from .emulator import channel_resource_id
from .services import CHANNEL_TTL, google_connection_backfill, google_connection_connect


def google_demo_connect() -> list[Connection]:
    connections = []
    for account in GOOGLE_DEMO_ACCOUNTS:
        therapist = Therapist.objects.filter(email=account).first()
        if therapist is None:
            continue
        existing = Connection.objects.filter(platform="google", therapist=therapist).first()
        if existing is not None:  # seeded before, or connected by hand since: leave it alone
            connections.append(existing)
            continue
        connection = google_connection_connect(
            actor=None,
            therapist=therapist,
            tokens={"refresh_token": google_demo_refresh_token(account), "access_token": ""},
            account=account,  # as the consent would have told (the emulator is not running yet)
        )
        with transaction.atomic():
            # The emulator registers these channels when it starts (the hub cannot call it before then).
            expiration = datetime.now(UTC) + CHANNEL_TTL
            connection.credentials = {
                **connection.credentials,
                "calendar_id": account,
                "channel_token": google_demo_channel_token(account),
            }
            connection.config = {
                **connection.config,
                "window_past_days": 7,
                "window_future_days": 30,
                "channel": {
                    "id": google_demo_channel_id(account),
                    "resource_id": channel_resource_id(account),
                    "expiration": int((expiration - timedelta(hours=1)).timestamp() * 1000),
                },
            }
            connection.display_name = f"Google Calendar: {account} (emulator)"
            connection.save()
            audit_record(
                actor=None,
                action="integrations.connection.google_demo_seeded",
                target=connection,
                details={"calendar": "demo emulator"},
            )
        google_connection_backfill(connection=connection)
        connections.append(connection)
    return connections
