"""The platform emulators the demo runs (`manage.py run_emulators`), with a live scenario: bookings that
arrive while you watch, announced to the hub by signed webhooks as the real platforms do."""

from __future__ import annotations

import json
import logging
import random
import threading
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .simplepractice import emulator as simplepractice
from .zocdoc.emulator import ZocdocEmulator, appointment_json, serve

logger = logging.getLogger(__name__)

# The demo practice's New York therapists, as Zocdoc knows them (seed_demo maps them to therapists).
ZOCDOC_DEMO_PROVIDERS = ("pr_demo-1", "pr_demo-2", "pr_demo-3")
ZOCDOC_DEMO_CLIENT = {"client_id": "demo-hub", "client_secret": "demo-zocdoc-secret"}
# The secret part of the demo clinician's SimplePractice feed URL (seed_demo subscribes to it).
SIMPLEPRACTICE_DEMO_TOKEN = "demo-feed-7f3a9c"


def simplepractice_demo_emulator(today: date) -> simplepractice.SimplePracticeEmulator:
    """Two weeks of one New York clinician's sessions, titled as practices do (initials, full names,
    generic, Busy), with a weekly client, a cancellation and telehealth links."""
    emulator = simplepractice.SimplePracticeEmulator(zone="America/New_York")
    emulator.add_feed(SIMPLEPRACTICE_DEMO_TOKEN)
    simplepractice.demo_feed(emulator, SIMPLEPRACTICE_DEMO_TOKEN, today)
    return emulator


def zocdoc_demo_emulator(today: date) -> ZocdocEmulator:
    """Two weeks of weekday bookings, deterministic for a given day (a restart serves the same ones)."""
    rng = random.Random(today.toordinal())
    emulator = ZocdocEmulator(ZOCDOC_DEMO_CLIENT)
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


def run_all(*, ports: dict[str, int], hub_url: str, live_every: float) -> list[Any]:
    """Start every emulator on its port; returns the servers (and the live feed) to stop."""
    emulator = zocdoc_demo_emulator(datetime.now(UTC).date())
    server, url = serve(emulator, port=ports["zocdoc"])
    logger.info("Zocdoc emulator on %s with %d appointments", url, len(emulator.appointments))
    feed = LiveBookings(emulator, hub_url, live_every)
    if live_every > 0:
        feed.start()
    sp_emulator = simplepractice_demo_emulator(datetime.now(UTC).date())
    sp_server, sp_url = simplepractice.serve(sp_emulator, port=ports["simplepractice"])
    logger.info("SimplePractice feed emulator on %s/ical/%s.ics", sp_url, SIMPLEPRACTICE_DEMO_TOKEN)
    return [server, feed, sp_server]
