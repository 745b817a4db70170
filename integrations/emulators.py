"""The platform emulators the demo runs (`manage.py run_emulators`), with a live scenario: bookings that
arrive while you watch, announced to the hub by signed webhooks as the real platforms do (Zocdoc), or found by
the hub's next poll where the platform has no push (Kareo/Tebra)."""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from lib.derive import derive_secret

from .google.emulator import GoogleCalendarEmulator
from .google.emulator import serve as serve_google
from .kareo.emulator import KareoEmulator, appointment_data, kareo_datetime
from .kareo.emulator import serve as serve_kareo
from .simplepractice import emulator as simplepractice
from .zocdoc.emulator import ZocdocEmulator, appointment_json, serve

logger = logging.getLogger(__name__)

# The demo practice's New York therapists, as Zocdoc knows them (seed_demo maps them to therapists).
ZOCDOC_DEMO_PROVIDERS = ("pr_demo-1", "pr_demo-2", "pr_demo-3")


def demo_secret(purpose: str) -> str:
    """A demo credential, generated per install: derived from DEMO_SECRET (var/.demo_secret under DEBUG),
    which seed_demo and the emulator process (`run_emulators`) both read, so they agree without any secret
    being a constant in the source."""
    from django.conf import settings

    if not settings.DEMO_SECRET:
        raise ImproperlyConfigured("The demo needs DEMO_SECRET (generated into var/ when DEBUG is on).")
    return derive_secret(settings.DEMO_SECRET, f"demo:{purpose}")


def zocdoc_demo_client() -> dict[str, str]:
    return {"client_id": "demo-hub", "client_secret": demo_secret("zocdoc-client-secret")}


def zocdoc_demo_webhook_key() -> str:
    """The base64 HMAC key Zocdoc signs the demo's webhooks with."""
    return base64.b64encode(demo_secret("zocdoc-webhook-key").encode()).decode()


def simplepractice_demo_token() -> str:
    """The secret part of the demo clinician's SimplePractice feed URL (seed_demo subscribes to it)."""
    return "demo-feed-" + demo_secret("simplepractice-feed")[:16]


def simplepractice_demo_emulator(today: date) -> simplepractice.SimplePracticeEmulator:
    """Two weeks of one New York clinician's sessions, titled as practices do (initials, full names,
    generic, Busy), with a weekly client, a cancellation and telehealth links."""
    emulator = simplepractice.SimplePracticeEmulator(zone="America/New_York")
    token = simplepractice_demo_token()
    emulator.add_feed(token)
    simplepractice.demo_feed(emulator, token, today)
    return emulator


# The two demo therapists with logins, connected to their Google calendars by seed_demo (refresh token per
# account, as if they had consented) with a push channel each. The client matches GOOGLE_EMULATOR=1.
GOOGLE_DEMO_ACCOUNTS = ("maya.okafor@demo.clinic", "daniel.reyes@demo.clinic")


def google_demo_client() -> dict[str, str]:
    # The secret matches GOOGLE_OAUTH_CLIENT_SECRET's default under GOOGLE_EMULATOR=1 (config/settings).
    return {
        "client_id": "demo-hub.apps.googleusercontent.com",
        "client_secret": derive_secret(_demo_key(), "google-client-secret"),
    }


def _demo_key() -> str:
    from django.conf import settings

    return settings.DEMO_SECRET


def google_demo_refresh_token(account: str) -> str:
    return "1//demo-" + demo_secret(f"google-refresh:{account}")


def google_demo_channel_token(account: str) -> str:
    """The token of the demo channel of ``account`` (one per channel, as for real channels)."""
    return demo_secret(f"google-channel:{account}")


def google_demo_channel_id(account: str) -> str:
    return "demo-" + account.split("@")[0].replace(".", "-")


def google_demo_emulator(today: date, hub_url: str) -> GoogleCalendarEmulator:
    """Personal events of the two demo therapists (busy, free, all-day, a weekly series), deterministic for
    a given day, and the channels seed_demo registered, notifying ``hub_url``."""
    rng = random.Random(today.toordinal() * 7)
    emulator = GoogleCalendarEmulator(
        {
            **google_demo_client(),
            "accounts": {a: {"time_zone": "America/New_York"} for a in GOOGLE_DEMO_ACCOUNTS},
            "refresh_tokens": {google_demo_refresh_token(a): a for a in GOOGLE_DEMO_ACCOUNTS},
            "channels": [
                {
                    "id": google_demo_channel_id(account),
                    "calendar": account,
                    "token": google_demo_channel_token(account),
                    "address": f"{hub_url.rstrip('/')}/webhooks/google/",
                }
                for account in GOOGLE_DEMO_ACCOUNTS
            ],
        }
    )
    for account in GOOGLE_DEMO_ACCOUNTS:
        for offset in range(14):
            day = today + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            start = datetime.combine(day, time(12 + rng.randrange(8), rng.choice((0, 30))), tzinfo=UTC)
            emulator.add_event(account, _google_event(start, 45, "Personal"))
            if offset % 3 == 0:  # free: shows in Google, blocks nothing in the hub
                emulator.add_event(
                    account, _google_event(start + timedelta(hours=2), 30, "Reminder", free=True)
                )
        emulator.add_event(
            account,
            {
                "summary": "Conference (all day)",
                "start": {"date": (today + timedelta(days=4)).isoformat()},
                "end": {"date": (today + timedelta(days=5)).isoformat()},
            },
        )
        first = datetime.combine(today + timedelta(days=1), time(21, 0), tzinfo=UTC)
        emulator.add_recurring(account, _google_event(first, 60, "Supervision"), count=4)
    return emulator


def _google_event(start: datetime, minutes: int, summary: str, *, free: bool = False) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": start.isoformat(), "timeZone": "America/New_York"},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "America/New_York"},
        **({"transparency": "transparent"} if free else {}),
    }


class LiveGoogleEvents(threading.Thread):
    """Every `every` seconds a demo therapist adds a personal event in Google; its channel tells the hub."""

    def __init__(self, emulator: GoogleCalendarEmulator, every: float) -> None:
        super().__init__(name="google-live-events", daemon=True)
        self.emulator, self.every = emulator, every
        self.stopped = threading.Event()
        self.rng = random.Random()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.add_one()

    def add_one(self) -> dict[str, Any]:
        day = datetime.now(UTC).date() + timedelta(days=self.rng.randrange(1, 10))
        start = datetime.combine(day, time(13 + self.rng.randrange(6), self.rng.choice((0, 30))), tzinfo=UTC)
        account = self.rng.choice(list(GOOGLE_DEMO_ACCOUNTS))
        event = self.emulator.add_event(account, _google_event(start, 30, "Personal"))
        logger.info("Google: %s added a personal event at %s", account, start)
        return event


def zocdoc_demo_emulator(today: date) -> ZocdocEmulator:
    """Two weeks of weekday bookings, deterministic for a given day (a restart serves the same ones)."""
    rng = random.Random(today.toordinal())
    emulator = ZocdocEmulator({**zocdoc_demo_client(), "webhook_key": zocdoc_demo_webhook_key()})
    for offset in range(14):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for n, provider in enumerate(ZOCDOC_DEMO_PROVIDERS):
            hour = 15 + rng.randrange(5)  # 10:00-14:00 in New York
            start = datetime.combine(day, time(hour, 30), tzinfo=UTC)
            emulator.add_appointment(_booking(f"zd-demo-{day:%Y%m%d}-{n}", provider, start, rng))
    return emulator


def _booking(appointment_id: str, provider: str, start: datetime, rng: random.Random) -> dict[str, Any]:
    return appointment_json(
        start.isoformat(timespec="seconds"),
        appointment_id=appointment_id,
        provider_location_id=f"{provider}|lo_demo-riverside",
        developer_patient_id=f"demo-pt-{rng.randrange(500)}",
        appointment_status=rng.choice(("confirmed", "confirmed", "pending_booking")),
        last_modified_time_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )


class LiveBookings(threading.Thread):
    """Every `every` seconds a new Zocdoc booking appears and the hub is told by a signed webhook."""

    def __init__(self, emulator: ZocdocEmulator, hub_url: str, every: float) -> None:
        super().__init__(name="zocdoc-live-bookings", daemon=True)
        self.emulator, self.hub_url, self.every = emulator, hub_url.rstrip("/"), every
        self.stopped = threading.Event()
        self.rng = random.Random()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.book_one()

    def book_one(self) -> tuple[dict[str, Any], int | None]:
        """Add one booking and announce it; returns it and the hub's HTTP status (None if unreachable)."""
        day = datetime.now(UTC).date() + timedelta(days=self.rng.randrange(1, 10))
        if day.weekday() >= 5:
            day += timedelta(days=7 - day.weekday())
        start = datetime.combine(
            day, time(15 + self.rng.randrange(5), self.rng.choice((0, 15, 45))), tzinfo=UTC
        )
        booking = self.emulator.add_appointment(
            _booking(
                f"zd-live-{datetime.now(UTC):%Y%m%d%H%M%S%f}",
                self.rng.choice(ZOCDOC_DEMO_PROVIDERS),
                start,
                self.rng,
            )
        )
        body, headers = self.emulator.webhook_request(booking["appointment_id"], "created")
        request = urllib.request.Request(
            f"{self.hub_url}/webhooks/zocdoc/", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                logger.info(
                    "Zocdoc booked %s; hub answered %s",
                    booking["appointment_id"],
                    json.loads(response.read() or b"{}"),
                )
                return booking, response.status
        except OSError as exc:  # the hub may not be up yet; polling picks the booking up anyway
            logger.warning("Zocdoc booked %s; webhook not delivered (%s)", booking["appointment_id"], exc)
            return booking, None


# The demo practice's London therapists, as Kareo/Tebra knows them (ResourceName1; seed_demo maps them).
KAREO_DEMO_RESOURCES = ("Bennett, Oliver LCSW", "Rahman, Aisha PsyD")
KAREO_DEMO_ZONE = (
    "Europe/London"  # the practice zone: Kareo's wall times are in it, and the connection says so
)


def kareo_demo_credentials() -> dict[str, str]:
    return {
        "customer_key": demo_secret("kareo-customer-key"),
        "user": "api@demo.clinic",
        "password": demo_secret("kareo-password"),
    }


KAREO_DEMO_MIN_INTERVAL = 10.0  # seconds; a quicker second poll is throttled, as Kareo asks for rare polling


def kareo_demo_emulator(today: date) -> KareoEmulator:
    """Two weeks of weekday appointments in London wall time, deterministic for a given day."""
    rng = random.Random(today.toordinal() * 7 + 2)
    emulator = KareoEmulator(
        {**kareo_demo_credentials(), "timezone": KAREO_DEMO_ZONE, "min_interval": KAREO_DEMO_MIN_INTERVAL}
    )
    modified = datetime.combine(today - timedelta(days=1), time(8, 0))
    for offset in range(14):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for n, resource in enumerate(KAREO_DEMO_RESOURCES):
            start = datetime.combine(day, time(10 + rng.randrange(6), rng.choice((0, 30))))
            emulator.add_appointment(
                appointment_data(
                    f"{day:%y%m%d}{n}",
                    start,
                    start + timedelta(minutes=50),
                    resource=resource,
                    status=rng.choice(("Confirmed", "Confirmed", "Scheduled", "ReminderSent")),
                    patient_id=20000 + rng.randrange(400),
                    last_modified=modified,
                    ServiceLocationName="Harbour Street Practice",
                )
            )
    return emulator


class LiveKareoChanges(threading.Thread):
    """Every `every` seconds Kareo changes: a new appointment, or one rescheduled or cancelled. Kareo has no
    push, so nothing is announced: the hub's next poll (every 5 minutes at most) brings the change in."""

    def __init__(self, emulator: KareoEmulator, every: float) -> None:
        super().__init__(name="kareo-live-changes", daemon=True)
        self.emulator, self.every = emulator, every
        self.stopped = threading.Event()
        self.rng = random.Random()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.change_one()

    def change_one(self) -> dict[str, str]:
        now = self.emulator.now_local()
        existing = [
            row for row in self.emulator.appointments.values() if row.get("ConfirmationStatus") != "Cancelled"
        ]
        roll = self.rng.random()
        if existing and roll < 0.2:
            row = self.rng.choice(existing)
            logger.info("Kareo: appointment %s cancelled", row["ID"])
            return self.emulator.update_appointment(row["ID"], ConfirmationStatus="Cancelled")
        if existing and roll < 0.4:
            row = self.rng.choice(existing)
            start = datetime.combine(now.date() + timedelta(days=self.rng.randrange(1, 10)), time(9, 0))
            start += timedelta(minutes=30 * self.rng.randrange(16))
            logger.info("Kareo: appointment %s rescheduled", row["ID"])
            return self.emulator.update_appointment(
                row["ID"],
                StartDate=kareo_datetime(start),
                EndDate=kareo_datetime(start + timedelta(minutes=50)),
            )
        day = now.date() + timedelta(days=self.rng.randrange(1, 10))
        start = datetime.combine(day, time(9 + self.rng.randrange(8), self.rng.choice((0, 30))))
        booking = self.emulator.add_appointment(
            appointment_data(
                f"9{now:%y%m%d%H%M%S}",
                start,
                start + timedelta(minutes=50),
                resource=self.rng.choice(KAREO_DEMO_RESOURCES),
                status="Scheduled",
                patient_id=20000 + self.rng.randrange(400),
                last_modified=now,
                ServiceLocationName="Harbour Street Practice",
            )
        )
        logger.info("Kareo: appointment %s booked", booking["ID"])
        return booking


def load_scenario(path: str | Path) -> dict[str, Any]:
    """A scenario file: the JSON object an emulator is constructed from (its credentials, its records)."""
    try:
        scenario = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read the scenario {path}: {exc}") from exc
    if not isinstance(scenario, dict):
        raise ValueError(f"The scenario {path} is not a JSON object.")
    return scenario


def run_all(
    *, ports: dict[str, int], hub_url: str, live_every: float, scenarios: dict[str, str] | None = None
) -> list[Any]:
    """Start every emulator on its port; returns the servers (and the live feeds) to stop.

    ``scenarios`` maps a platform to a scenario file that replaces the demo's generated state."""
    scenarios = scenarios or {}
    unknown = set(scenarios) - {"zocdoc", "kareo", "google", "simplepractice"}
    if unknown:
        raise ValueError(f"No emulator for {', '.join(sorted(unknown))}.")
    today = datetime.now(UTC).date()
    emulator = (
        ZocdocEmulator(load_scenario(scenarios["zocdoc"]))
        if "zocdoc" in scenarios
        else zocdoc_demo_emulator(today)
    )
    server, url = serve(emulator, port=ports["zocdoc"])
    logger.info("Zocdoc emulator on %s with %d appointments", url, len(emulator.appointments))
    feed = LiveBookings(emulator, hub_url, live_every)
    kareo = (
        KareoEmulator(load_scenario(scenarios["kareo"]))
        if "kareo" in scenarios
        else kareo_demo_emulator(today)
    )
    kareo_server, kareo_url = serve_kareo(kareo, port=ports["kareo"])
    logger.info("Kareo/Tebra emulator on %s with %d appointments", kareo_url, len(kareo.appointments))
    kareo_feed = LiveKareoChanges(kareo, live_every)
    if live_every > 0:
        feed.start()
        kareo_feed.start()
    google = (
        GoogleCalendarEmulator(load_scenario(scenarios["google"]))
        if "google" in scenarios
        else google_demo_emulator(today, hub_url)
    )
    google_server, google_url = serve_google(google, port=ports["google"])
    logger.info("Google Calendar emulator on %s for %s", google_url, ", ".join(GOOGLE_DEMO_ACCOUNTS))
    google_feed = LiveGoogleEvents(google, live_every * 2)
    if live_every > 0:
        google_feed.start()
    sp_emulator = (
        simplepractice.SimplePracticeEmulator.from_scenario(load_scenario(scenarios["simplepractice"]))
        if "simplepractice" in scenarios
        else simplepractice_demo_emulator(today)
    )
    sp_server, sp_url = simplepractice.serve(sp_emulator, port=ports.get("simplepractice", 0))
    logger.info("SimplePractice feed emulator on %s/ical/demo-feed-….ics", sp_url)
    return [server, feed, kareo_server, kareo_feed, google_server, google_feed, sp_server]
