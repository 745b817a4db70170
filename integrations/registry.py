"""The plain registry of platform connectors, imported lazily (a platform's libraries load only when used)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Connector

CONNECTORS: dict[str, str] = {
    "zocdoc": "integrations.zocdoc.connector.ZocdocConnector",
    "kareo": "integrations.kareo.connector.KareoConnector",
    "google": "integrations.google.connector.GoogleCalendarConnector",
    "ics_feed": "integrations.ics_feed.connector.IcsFeedConnector",
    "simplepractice": "integrations.simplepractice.connector.SimplePracticeConnector",
}


def connector_class(platform: str) -> type[Connector]:
    from django.conf import settings

    try:
        # CONNECTOR_OVERRIDES exists only in the test settings (a recording calendar for the write queue's
        # tests, loaded by worker processes too); production settings have none.
        path = getattr(settings, "CONNECTOR_OVERRIDES", {}).get(platform) or CONNECTORS[platform]
    except KeyError:
        raise LookupError(f"No connector is registered for {platform!r}.") from None
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)
