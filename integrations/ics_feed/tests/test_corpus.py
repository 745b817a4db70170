"""Every calendar shipped in icalendar's and recurring-ical-events' own test corpora, through the upload
service (``import_ics``, the API, the job) and the feed path (``subscribe_ics_feed`` → the connector's parse
→ sync_apply): a clean import or a clean refusal (IcsError / InvalidInput with a message), never an
unhandled exception. Parametrised per file, so a failure names it. The result is reported in docs/ical.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from integrations.base import FetchResult
from integrations.ics_feed.connector import occurrences_to_events
from integrations.ics_feed.parse import IcsError, parse_calendar
from integrations.ics_feed.services import ics_feed_subscribe, ics_import_apply
from integrations.services import sync_apply
from lib.errors import InvalidInput

CORPUS = sorted(
    [
        *Path(icalendar.__file__).parent.joinpath("tests").rglob("*.ics"),
        *Path(recurring_ical_events.__file__).parent.rglob("*.ics"),
    ]
)
WINDOW = (datetime(2019, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))


def test_the_corpus_is_there():
    assert len(CORPUS) > 200


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_corpus_calendar_imports_or_is_refused_cleanly(path, therapist_a):
    data = path.read_bytes()
    try:
        result = ics_import_apply(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    except InvalidInput as exc:
        assert exc.message.startswith("The .ics file was refused: ")
    else:  # per-record problems (a zero-length or over-long event) are reported, not raised
        assert all(isinstance(e, str) for e in result.errors)
    connection = ics_feed_subscribe(actor=None, therapist=therapist_a, url="https://feed.example/x.ics")
    try:
        parsed = parse_calendar(data, window=WINDOW, default_zone=therapist_a.timezone)
    except IcsError as exc:
        assert exc.message
        return
    events = occurrences_to_events(parsed, platform="ics_feed")
    sync_apply(connection=connection, result=FetchResult(events, complete_window=WINDOW))


X_WR = [p for p in CORPUS if b"X-WR-TIMEZONE" in p.read_bytes()]


@pytest.mark.parametrize("path", X_WR, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_x_wr_timezone_is_read_as_the_x_wr_timezone_package_reads_it(path):
    """Every timed, not cancelled occurrence starts at the instant x-wr-timezone + recurring-ical-events
    give, over a year from the file's first event (a year keeps daily series under the per-event cap)."""
    import x_wr_timezone

    data = path.read_bytes()
    reference = x_wr_timezone.to_standard(icalendar.Calendar.from_ical(data))
    starts = [
        e["DTSTART"].dt
        for e in reference.walk("VEVENT")
        if e.get("DTSTART") is not None and isinstance(e["DTSTART"].dt, datetime) and e["DTSTART"].dt.tzinfo
    ]
    if not starts:
        return  # all-day or floating events only: nothing the calendar's zone decides
    first = min(starts).astimezone(UTC)
    window = (first - timedelta(days=1), first + timedelta(days=365))
    try:
        ours = parse_calendar(data, window=window, default_zone="UTC")
    except IcsError:
        return  # refused for another reason (e.g. an event without a UID), cleanly: the corpus test covers it
    expected = sorted(
        e["DTSTART"].dt.astimezone(UTC)
        for e in recurring_ical_events.of(reference).between(*window)
        if isinstance(e["DTSTART"].dt, datetime) and e["DTSTART"].dt.tzinfo is not None
    )
    got = sorted(
        o.start.astimezone(UTC)
        for o in ours.occurrences
        if not o.all_day and not o.cancelled and o.zone != "floating"
    )
    assert got == expected, (path.name, sorted(set(got) ^ set(expected))[:5])
