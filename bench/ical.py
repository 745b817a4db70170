"""Benchmark of .ics import and export (issue 7), against the icalendar library's own time on the same data.

    .venv/bin/python -m bench.ical [--events N] [--repeat R] [--requests Q]

A. Import of an N-event file (default 10,000 VEVENTs in the style of a Google export: TZID + VTIMEZONE,
   X-WR-TIMEZONE; 5% weekly series of 8 occurrences, with an EXDATE and an override each):
   - icalendar alone: ``Calendar.from_ical(data)``;
   - the hub's parse: ``parse_calendar`` (strict validation with line numbers, icalendar's parse,
     X-WR-TIMEZONE, expansion of the series by recurring-ical-events) + ``occurrences_to_events``;
   - the whole import into the database: ``ics_import_apply`` (the above plus sync_apply: ledger,
     appointments, conflict detection), first load and an idempotent re-import of the same file.
B. Export of N appointments of one therapist: ``appointments_to_ics`` over the queryset (query, building
   the components, VTIMEZONE, serialising) against icalendar's own ``Calendar.to_ical()`` of the same
   calendar.
C. The subscribed feed: GET /feeds/<token>.ics through the whole Django stack (django.test.Client) over
   the same N appointments: the first (uncached) rendering, then Q requests served from the cache.

Medians of R runs. Runs on a fresh SQLite file in a temporary directory (deleted afterwards). Report
(markdown) to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.conflicts import code_version, fresh_database, load_average, log, machine, setup_django

ZONE = "America/New_York"
VTIMEZONE = """BEGIN:VTIMEZONE
TZID:America/New_York
X-LIC-LOCATION:America/New_York
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE"""


def generate_file(n: int, start: datetime, rng: random.Random) -> bytes:
    """N VEVENTs in the style of a busy practice's export: hourly 50-minute sessions 08:00-20:00 every day,
    none overlapping (so conflict detection has nothing to report), and 1% weekly series of 8 at 21:00,
    each with an EXDATE and an override moved to 22:00."""
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Bench",
        f"X-WR-TIMEZONE:{ZONE}",
        *VTIMEZONE.split("\n"),
    ]
    zone = ZoneInfo(ZONE)
    first_day = start.astimezone(zone).date()
    n_series = n // 101  # each series is two VEVENTs (the rule and its override): n VEVENTs in all
    for i in range(n - n_series):
        series = i < n_series
        if series:  # weekday i % 7, in its own block of 8 weeks, at 21:00
            day = first_day + timedelta(days=(i // 7) * 56 + i % 7)
            hour = 21
        else:
            k = i - n_series
            day, hour = first_day + timedelta(days=k // 13), 8 + k % 13
        begin = datetime(day.year, day.month, day.day, hour, 0)
        end = begin + timedelta(minutes=50)
        uid = f"bench-{i:06d}@google.com"
        common = [
            f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}",
            f"UID:{uid}",
            f"CREATED:{start:%Y%m%dT%H%M%SZ}",
            "DESCRIPTION:Session notes are PHI and never stored",
            f"LAST-MODIFIED:{start:%Y%m%dT%H%M%SZ}",
            "SEQUENCE:0",
            "STATUS:CONFIRMED",
            f"SUMMARY:Client {rng.randrange(5000)}",
            "TRANSP:OPAQUE",
        ]
        lines += [
            "BEGIN:VEVENT",
            f"DTSTART;TZID={ZONE}:{begin:%Y%m%dT%H%M%S}",
            f"DTEND;TZID={ZONE}:{end:%Y%m%dT%H%M%S}",
        ]
        if series:
            lines += [
                "RRULE:FREQ=WEEKLY;COUNT=8",
                f"EXDATE;TZID={ZONE}:{begin + timedelta(weeks=2):%Y%m%dT%H%M%S}",
            ]
        lines += [*common, "END:VEVENT"]
        if series:  # its override (one more VEVENT): the fourth occurrence an hour later
            original = begin + timedelta(weeks=3)
            moved = original + timedelta(hours=1)
            lines += [
                "BEGIN:VEVENT",
                f"DTSTART;TZID={ZONE}:{moved:%Y%m%dT%H%M%S}",
                f"DTEND;TZID={ZONE}:{moved + timedelta(minutes=50):%Y%m%dT%H%M%S}",
                f"RECURRENCE-ID;TZID={ZONE}:{original:%Y%m%dT%H%M%S}",
                *[c if not c.startswith("SEQUENCE") else "SEQUENCE:1" for c in common],
                "END:VEVENT",
            ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def median_time(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def paired(lib: Callable[[], Any], hub: Callable[[], Any], repeat: int) -> tuple[float, float, float, Any]:
    """Interleaved runs (the machine's load drifts): medians of each and of the per-pair ratio hub/lib."""
    libs, hubs, ratios, result = [], [], [], None
    for _ in range(repeat):
        t_lib, _ = median_time(lib, 1)
        t_hub, result = median_time(hub, 1)
        libs.append(t_lib)
        hubs.append(t_hub)
        ratios.append(t_hub / t_lib)
    return statistics.median(libs), statistics.median(hubs), statistics.median(ratios), result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    scratch = setup_django()
    try:
        return run(args)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    fresh_database()
    import icalendar
    from django.conf import settings
    from django.test import Client

    from integrations.ics_feed.connector import occurrences_to_events
    from integrations.ics_feed.parse import parse_calendar
    from integrations.ics_feed.services import ics_import_apply
    from scheduler.ical import EXPORT_FIELDS, appointments_calendar, appointments_to_ics
    from scheduler.models import Appointment, Therapist
    from scheduler.services import calendar_feed_token_create

    settings.ICS_IMPORT_MAX_BYTES = 200 * 1024 * 1024
    rng = random.Random(7)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=20)
    window = (start - timedelta(days=1), start + timedelta(days=3 * 365))
    data = generate_file(args.events, start, rng)
    log(f"file: {len(data) / 1e6:.1f} MB, {data.count(b'BEGIN:VEVENT')} VEVENTs")
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    hours = {d: ["07:00-23:30"] for d in days}
    importer = Therapist.objects.create(
        name="Importer", email="i@bench.test", timezone=ZONE, working_hours=hours
    )
    exporter = Therapist.objects.create(
        name="Exporter", email="e@bench.test", timezone=ZONE, working_hours=hours
    )

    # A. import
    log("A: icalendar.Calendar.from_ical and the hub's parse, interleaved")
    cal = icalendar.Calendar.from_ical(data)
    n_components = len(cal.walk("VEVENT"))

    def hub_parse() -> Any:
        parsed = parse_calendar(data, window=window, default_zone=ZONE)
        return parsed, occurrences_to_events(parsed, platform="ics_feed")

    t_lib_parse, t_hub_parse, ratio_parse, (parsed, events) = paired(
        lambda: icalendar.Calendar.from_ical(data), hub_parse, args.repeat
    )
    log("A: ics_import_apply (first load)")
    t0 = time.perf_counter()
    first = ics_import_apply(actor=None, therapist=importer, data=data, window=window)
    t_import_first = time.perf_counter() - t0
    log("A: ics_import_apply (the same file again)")
    t0 = time.perf_counter()
    again = ics_import_apply(actor=None, therapist=importer, data=data, window=window)
    t_import_again = time.perf_counter() - t0
    assert again.created == again.updated == again.cancelled == 0, again

    # B. export
    log("B: writing appointments to export")
    rows = []
    for _ in range(args.events):
        begin = start + timedelta(
            days=rng.randrange(360), hours=rng.randrange(10), minutes=15 * rng.randrange(4)
        )
        rows.append(
            Appointment(
                therapist=exporter,
                start=begin,
                end=begin + timedelta(minutes=50),
                timezone=ZONE,
                status=rng.choice(("scheduled", "confirmed", "confirmed", "cancelled")),
                version=1 + rng.randrange(3),
            )
        )
    Appointment.objects.bulk_create(rows, batch_size=1000)
    qs = Appointment.objects.filter(therapist=exporter).only(*EXPORT_FIELDS).order_by("start", "pk")
    log("B: appointments_to_ics and icalendar's to_ical of the same calendar, interleaved")
    built = appointments_calendar(qs.all())
    t_lib_serialise, t_export, ratio_export, body = paired(
        built.to_ical, lambda: appointments_to_ics(qs.all()), args.repeat
    )
    t_query, _ = median_time(lambda: list(qs.all()), args.repeat)
    t_build, _ = median_time(lambda: appointments_calendar(qs.all()), args.repeat)

    # C. the feed
    log("C: the feed")
    _, token = calendar_feed_token_create(actor=None, therapist=exporter)
    client = Client(HTTP_HOST="localhost")
    path = f"/feeds/{token}.ics"
    t0 = time.perf_counter()
    cold = client.get(path)
    t_cold = time.perf_counter() - t0
    assert cold.status_code == 200
    for _ in range(5):
        client.get(path)
    samples = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - t0)
        assert response.status_code == 200 and len(response.content) == len(cold.content)
    samples.sort()
    feed_events = cold.content.count(b"BEGIN:VEVENT")

    overhead_parse = ratio_parse - 1
    overhead_import = t_import_first / t_lib_parse - 1
    overhead_export = ratio_export - 1
    out = sys.stdout.write
    out(f"### .ics import and export (issue 7) — {datetime.now(UTC):%Y-%m-%d}\n\n")
    out(
        f"`.venv/bin/python -m bench.ical --events {args.events} --repeat {args.repeat} "
        f"--requests {args.requests}`"
    )
    out(f" on SQLite; {machine()}; load {load_average()}; code {code_version()}.\n\n")
    out(
        f"File: {len(data) / 1e6:.1f} MB, {n_components:,} VEVENTs ({parsed.series} weekly series with an "
        f"EXDATE and an override each), {len(parsed.occurrences):,} occurrences in the window.\n\n"
    )
    out("| step | median | vs icalendar alone | budget |\n|---|---|---|---|\n")
    out(f"| A. icalendar `Calendar.from_ical` | {ms(t_lib_parse)} | — | |\n")
    out(
        f"| A. hub parse: validate + parse + expand + ExternalEvents | {ms(t_hub_parse)} | "
        f"+{overhead_parse:.0%} | +50%: {'met' if overhead_parse < 0.5 else 'MISSED'} |\n"
    )
    out(
        f"| A. whole import into the database (first load: {first.created:,} created) | "
        f"{ms(t_import_first)} | "
        f"+{overhead_import:.0%} | +50%: {'met' if overhead_import < 0.5 else 'MISSED'} |\n"
    )
    out(f"| A. the same file again ({again.unchanged:,} unchanged) | {ms(t_import_again)} | | |\n")
    out(
        f"| B. icalendar `Calendar.to_ical` of the {args.events:,}-event calendar | "
        f"{ms(t_lib_serialise)} | — | |\n"
    )
    out(
        f"| B. hub export `appointments_to_ics` (query + build + VTIMEZONE + serialise) | {ms(t_export)} | "
        f"+{overhead_export:.0%} | +50%: {'met' if overhead_export < 0.5 else 'MISSED'} |\n"
    )
    out(f"| B. of which: the query | {ms(t_query)} | | |\n")
    out(f"| B. of which: the query and building the calendar object | {ms(t_build)} | | |\n")
    out(f"| C. feed, first request (renders {feed_events:,} events, then cached) | {ms(t_cold)} | | |\n")
    median = statistics.median(samples)
    out(
        f"| C. feed from the cache, median of {args.requests} "
        f"(p95 {ms(samples[int(0.95 * len(samples)) - 1])}) | "
        f"{ms(median)} | | 50 ms: {'met' if median < 0.05 else 'MISSED'} |\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
