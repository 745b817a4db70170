"""A local emulator of a SimplePractice calendar subscription feed (platforms.md §7), for tests over HTTP.

SimplePractice has no public API; what it publishes is an .ics feed per clinician at a secret URL. Nothing
about the feed's content is documented, so almost everything here is **inferred [I]** and configurable:

- ``GET /ical/<token>.ics`` (the URL shape is invented; only "a secret URL per clinician" matters): 200
  ``text/calendar; charset=utf-8`` with ``ETag`` and ``Last-Modified``; ``If-None-Match`` /
  ``If-Modified-Since`` that match answer 304 with no body; an unknown token answers 404.
- Event titles vary as practices configure them: initials (``J.D.``), full names (``Jane Doe``), a
  generic ``Appointment``, and ``Busy`` for time blocked from a synced personal calendar. DESCRIPTION may
  carry a telehealth link. Treat SUMMARY and DESCRIPTION as PHI.
- A stable ``UID`` per appointment; ``DTSTART;TZID=<IANA zone>`` with a VTIMEZONE (``vtimezone=False``
  leaves it out; the zone name alone must then be enough); recurring appointments as a weekly RRULE;
  ``STATUS:CANCELLED`` for some; deleted appointments simply disappear.

Faults (``set_fault``), one at a time, each after ``after`` unaffected requests: ``server_error``
(``status``, default 503), ``timeout`` (sleeps ``seconds``), ``truncated`` (a 200 whose body stops mid-way,
with a matching Content-Length: the producer cut it) and ``cut_connection`` (Content-Length of the whole
body, but the connection closes early).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Timezone

from ..emulator_kit import FaultInjection
from ..zocdoc.emulator import serve_app

FAULTS = ("server_error", "timeout", "truncated", "cut_connection")
FIRST_NAMES = ("Jane", "Omar", "Priya", "Lucas", "Mei", "Tomas", "Aisha", "Noah")
LAST_NAMES = ("Doe", "Haddad", "Raman", "Silva", "Chen", "Novak", "Bello", "Fischer")


def title_for(style: str, first: str, last: str) -> str:
    """An event title as a practice might configure it."""
    return {
        "initials": f"{first[0]}.{last[0]}.",
        "full_name": f"{first} {last}",
        "generic": "Appointment",
        "busy": "Busy",
    }[style]


def appointment(
    start: datetime,
    *,
    minutes: int = 50,
    title: str = "Appointment",
    uid: str | None = None,
    status: str = "CONFIRMED",
    weekly_count: int = 0,
    telehealth: bool = False,
) -> dict[str, Any]:
    return {
        "uid": uid or f"{uuid.uuid4()}@simplepractice.invalid",
        "start": start,
        "minutes": minutes,
        "title": title,
        "status": status,
        "weekly_count": weekly_count,
        "telehealth": telehealth,
        "sequence": 0,
    }


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 §3.1: lines longer than 75 octets are folded."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts, chunk = [], b""
    for char in line:
        encoded = char.encode()
        if len(chunk) + len(encoded) > (75 if not parts else 74):
            parts.append(chunk.decode())
            chunk = b""
        chunk += encoded
    parts.append(chunk.decode())
    return "\r\n ".join(parts)


class SimplePracticeEmulator(FaultInjection):
    """Feeds per secret token; call the object as a WSGI application."""

    FAULTS = FAULTS

    def __init__(
        self,
        *,
        zone: str = "America/New_York",
        vtimezone: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.zone, self.vtimezone, self.clock = zone, vtimezone, clock
        self.feeds: dict[str, dict[str, dict[str, Any]]] = {}  # token -> uid -> appointment
        self.modified: dict[str, datetime] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, selected headers)
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.RLock()

    @classmethod
    def from_scenario(cls, scenario: dict[str, Any]) -> SimplePracticeEmulator:
        """``{"zone": "America/New_York", "vtimezone": true, "feeds": {"<token>": [{"uid", "start" (ISO
        8601 with offset), "minutes", "title", "status", "weekly_count", "telehealth"}, ...]}}``."""
        emulator = cls(
            zone=scenario.get("zone", "America/New_York"), vtimezone=scenario.get("vtimezone", True)
        )
        for token, appointments in (scenario.get("feeds") or {}).items():
            emulator.add_feed(token)
            for item in appointments:
                start = datetime.fromisoformat(item["start"])
                if start.tzinfo is None:
                    raise ValueError(f"{item.get('uid')}: start {item['start']!r} needs a UTC offset.")
                fields = {k: v for k, v in item.items() if k != "start"}
                emulator.add_appointment(token, appointment(start, **fields))
        return emulator

    # --- the Python API for tests and the demo ----------------------------------------------------

    def add_feed(self, token: str | None = None) -> str:
        token = token or uuid.uuid4().hex
        with self._lock:
            self.feeds.setdefault(token, {})
            self._touch(token)
        return token

    def add_appointment(self, token: str, appt: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.feeds[token][appt["uid"]] = copy.deepcopy(appt)
            self._touch(token)
        return appt

    def update_appointment(self, token: str, uid: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            appt = self.feeds[token][uid]
            appt.update(changes)
            appt["sequence"] += 1
            self._touch(token)
            return copy.deepcopy(appt)

    def delete_appointment(self, token: str, uid: str) -> None:
        with self._lock:
            del self.feeds[token][uid]
            self._touch(token)

    def render(self, token: str) -> bytes:
        with self._lock:
            appts = sorted(self.feeds[token].values(), key=lambda a: (a["start"], a["uid"]))
            stamp = self.modified[token]
        lines = [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//SimplePractice//Calendar Feed//EN",  # [I]
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            "X-WR-CALNAME:SimplePractice",
        ]
        zone = ZoneInfo(self.zone)
        if self.vtimezone and appts:
            first = min(a["start"] for a in appts).astimezone(zone).date()
            last = max(a["start"] for a in appts).astimezone(zone).date() + timedelta(weeks=60)
            tz = Timezone.from_tzinfo(zone, first_date=first - timedelta(days=366), last_date=last)
            lines.extend(tz.to_ical().decode().strip().split("\r\n"))
        for appt in appts:
            local = appt["start"].astimezone(zone)
            end = local + timedelta(minutes=appt["minutes"])
            event = [
                "BEGIN:VEVENT",
                f"UID:{appt['uid']}",
                f"DTSTAMP:{stamp:%Y%m%dT%H%M%SZ}",
                f"DTSTART;TZID={self.zone}:{local:%Y%m%dT%H%M%S}",
                f"DTEND;TZID={self.zone}:{end:%Y%m%dT%H%M%S}",
                f"SUMMARY:{_escape(appt['title'])}",
                f"STATUS:{appt['status']}",
                f"SEQUENCE:{appt['sequence']}",
            ]
            if appt["weekly_count"]:
                event.append(f"RRULE:FREQ=WEEKLY;COUNT={appt['weekly_count']}")
            if appt["telehealth"]:
                link = f"https://video.simplepractice.invalid/{uuid.uuid5(uuid.NAMESPACE_URL, appt['uid'])}"
                event.append(f"DESCRIPTION:{_escape(appt['title'])} — Telehealth: {link}")
            event.append("END:VEVENT")
            lines.extend(event)
        lines.append("END:VCALENDAR")
        return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode()

    # --- WSGI -----------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        conditional = {
            h: environ.get(f"HTTP_{h.upper().replace('-', '_')}", "")
            for h in ("If-None-Match", "If-Modified-Since")
        }
        with self._lock:
            self.requests.append((path, conditional))
        fault = self._next_fault()
        kind = fault and fault["kind"]
        if kind == "server_error":
            return self._plain(start_response, int(fault.get("status", 503)), b"Service Unavailable")
        if kind == "timeout":
            time.sleep(float(fault.get("seconds", 1.0)))
        token = path.removeprefix("/ical/").removesuffix(".ics") if path.startswith("/ical/") else ""
        with self._lock:
            known = token in self.feeds
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or not known:
            return self._plain(start_response, 404, b"Not Found")
        body = self.render(token)
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        modified = self.modified[token]
        headers = [("ETag", etag), ("Last-Modified", format_datetime(modified, usegmt=True))]
        if self._not_modified(conditional, etag, modified):
            start_response("304 Not Modified", headers)
            return [b""]
        if kind == "truncated":
            body = body[: len(body) * int(fault.get("percent", 60)) // 100]
        declared = len(body)
        if kind == "cut_connection":
            body = body[: len(body) // 2]
        start_response(
            "200 OK",
            [("Content-Type", "text/calendar; charset=utf-8"), ("Content-Length", str(declared)), *headers],
        )
        return [body]

    def _not_modified(self, conditional: dict[str, str], etag: str, modified: datetime) -> bool:
        if conditional["If-None-Match"]:
            return etag in [t.strip() for t in conditional["If-None-Match"].split(",")]
        if conditional["If-Modified-Since"]:
            try:
                return modified.replace(microsecond=0) <= parsedate_to_datetime(
                    conditional["If-Modified-Since"]
                )
            except (TypeError, ValueError):
                return False
        return False

    def _plain(self, start_response: Callable[..., Any], status: int, body: bytes) -> list[bytes]:
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _touch(self, token: str) -> None:
        self.modified[token] = self.clock()


def demo_feed(emulator: SimplePracticeEmulator, token: str, today: date, *, seed: int = 7) -> None:
    """Two weeks of weekday sessions whose titles vary (initials, full names, generic, Busy), a weekly
    recurring client, a cancelled one and a telehealth one; deterministic for a given day."""
    import random

    rng = random.Random(today.toordinal() + seed)
    zone = ZoneInfo(emulator.zone)
    styles = ("initials", "full_name", "generic", "busy")
    for offset in range(14):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for slot in range(2):
            hour = 9 + 3 * slot + rng.randrange(2)
            start = datetime(day.year, day.month, day.day, hour, 0, tzinfo=zone)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            style = styles[(offset + slot) % len(styles)]
            emulator.add_appointment(
                token,
                appointment(
                    start,
                    title=title_for(style, first, last),
                    uid=f"sp-demo-{day:%Y%m%d}-{slot}@simplepractice.invalid",
                    status="CANCELLED" if (offset, slot) == (3, 1) else "CONFIRMED",
                    telehealth=slot == 1,
                ),
            )
    monday = today + timedelta(days=(7 - today.weekday()) % 7)
    emulator.add_appointment(
        token,
        appointment(
            datetime(monday.year, monday.month, monday.day, 16, 0, tzinfo=zone),
            title="Jane Doe",
            uid="sp-demo-weekly@simplepractice.invalid",
            weekly_count=8,
        ),
    )


def serve(emulator: SimplePracticeEmulator | None = None, *, port: int = 0) -> tuple[Any, str]:
    emulator = emulator or SimplePracticeEmulator()
    server, base_url = serve_app(emulator, port=port)
    server.emulator = emulator  # type: ignore[attr-defined]
    return server, base_url
