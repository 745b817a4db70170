from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integrations.kareo.emulator import SERVICE_PATH, KareoEmulator, serve

ZONE = "America/Chicago"
CREDENTIALS = {"customer_key": "ck-test", "user": "api@clinic.test", "password": "pw-kareo"}


@pytest.fixture
def emulator():
    emulator = KareoEmulator(
        {
            "customer_key": CREDENTIALS["customer_key"],
            "user": CREDENTIALS["user"],
            "password": CREDENTIALS["password"],
            "timezone": ZONE,
        }
    )
    server, url = serve(emulator)
    emulator.url = url
    emulator.wsdl_url = f"{url}{SERVICE_PATH}?wsdl"
    yield emulator
    server.shutdown()
    server.server_close()


def local(days: int, hour: int = 10, minute: int = 0) -> datetime:
    """A naive practice-local wall time ``days`` from today (what Kareo's strings hold)."""
    today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date()
    return datetime.combine(today + timedelta(days=days), datetime.min.time()).replace(
        hour=hour, minute=minute
    )
