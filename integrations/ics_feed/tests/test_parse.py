"""Parsing and expansion of .ics files from different producers; refusal of malformed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations.ics_feed.connector import occurrences_to_events
from integrations.ics_feed.parse import IcsError, parse_calendar

FIXTURES = Path(__file__).parent / "fixtures"
WINDOW = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
NY, BERLIN, LA = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/Los_Angeles")


def parse(name_or_bytes, zone="America/New_York", window=WINDOW, **kw):
    data = name_or_bytes if isinstance(name_or_bytes, bytes) else (FIXTURES / name_or_bytes).read_bytes()
    return parse_calendar(data, window=window, default_zone=zone, **kw)


def ics(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def event(*props: str, uid="u1") -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261001T000000Z", *props, "END:VEVENT"]


def calendar(*events: list[str]) -> bytes:
    return ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        *[line for e in events for line in e],
        "END:VCALENDAR",
    )


def test_google_export_expands_rrule_exdate_and_overrides_in_the_events_zone():
    parsed = parse("google.ics")
    everything = [o for o in parsed.occurrences if o.uid.startswith("3kq0")]
    series = sorted((o for o in everything if not o.cancelled), key=lambda o: o.recurrence_id)
    # The EXDATE is reported as a cancelled occurrence: one imported before it was added is cancelled.
    assert [(o.recurrence_id, o.cancelled) for o in everything if o.cancelled] == [("20261102T150000Z", True)]
    # Six Mondays from 19 Oct, minus the EXDATE of 2 Nov; 9 Nov moved to 14:00 by its override.
    assert [o.recurrence_id for o in series] == [
        "20261019T140000Z",
        "20261026T140000Z",
        "20261109T150000Z",
        "20261116T150000Z",
        "20261123T150000Z",
    ]
    local = [o.start.astimezone(NY) for o in series]
    assert [(t.month, t.day, t.hour) for t in local] == [
        (10, 19, 10),
        (10, 26, 10),
        (11, 9, 14),
        (11, 16, 10),
        (11, 23, 10),
    ]
    # Same wall-clock time on both sides of the 1 Nov clock change: the UTC hour moves instead.
    assert [o.start.astimezone(UTC).hour for o in series] == [14, 14, 19, 15, 15]
    assert all(o.end - o.start == timedelta(minutes=50) for o in series)
    by_uid = {o.uid: o for o in parsed.occurrences}
    assert by_uid["0single1utc@google.com"].recurrence_id == ""
    assert by_uid["0free1@google.com"].transparent and by_uid["0cancelled1@google.com"].cancelled
    allday = by_uid["0allday1@google.com"]
    assert allday.all_day and allday.start == datetime(2026, 10, 26, tzinfo=NY)
    assert allday.end == datetime(2026, 10, 27, tzinfo=NY)
    assert parsed.events == 6 and parsed.series == 1


def test_outlook_windows_zone_names_are_mapped_with_or_without_a_vtimezone():
    parsed = parse("outlook.ics", zone="UTC")
    supervision = sorted((o for o in parsed.occurrences if "A0C3" in o.uid), key=lambda o: o.start)
    # Tuesdays 13 Oct to 10 Nov (UNTIL inclusive) at 09:00 in Berlin, across the 25 Oct change.
    assert [o.start.astimezone(BERLIN).strftime("%m-%d %H:%M") for o in supervision] == [
        "10-13 09:00",
        "10-20 09:00",
        "10-27 09:00",
        "11-03 09:00",
        "11-10 09:00",
    ]
    assert [o.start.astimezone(UTC).hour for o in supervision] == [7, 7, 8, 8, 8]
    # "Pacific Standard Time" has no VTIMEZONE in the file: icalendar's CLDR table maps it.
    (review,) = (o for o in parsed.occurrences if "AABB" in o.uid)
    assert review.start == datetime(2026, 11, 4, 13, 0, tzinfo=LA)
    assert review.start.utcoffset() == LA.utcoffset(datetime(2026, 11, 4, 13, 0))


def test_apple_export_rdate_exdate_cancelled_override_floating_and_all_day():
    parsed = parse("apple.ics", zone="America/Chicago")
    clinic = sorted((o for o in parsed.occurrences if o.uid.startswith("8A1B")), key=lambda o: o.start)
    days = [o.start.astimezone(BERLIN).strftime("%d %H:%M") for o in clinic if not o.cancelled]
    assert "22 11:00" not in days  # EXDATE
    assert days[-1] == "31 15:00"  # RDATE
    assert days[5:7] == ["27 11:00", "28 11:00"]  # after the 25 Oct change, still 11:00 in Berlin
    assert len(days) == 9  # 10 daily - 1 EXDATE - 1 cancelled override + 1 RDATE
    cancelled = [o.recurrence_id for o in clinic if o.cancelled]
    assert cancelled == ["20261022T090000Z", "20261024T090000Z"]  # the EXDATE and the cancelled override
    # Floating and all-day times are the therapist's (here Chicago's) wall-clock time.
    by_uid = {o.uid: o for o in parsed.occurrences}
    chicago = ZoneInfo("America/Chicago")
    assert by_uid["F1OATING-0001"].start == datetime(2026, 10, 27, 9, 0, tzinfo=chicago)
    assert by_uid["ALLDAY-0001"].start == datetime(2026, 10, 28, tzinfo=chicago)


def test_only_occurrences_inside_the_window_are_returned():
    narrow = (datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
    parsed = parse("google.ics", window=narrow)
    assert [o.recurrence_id for o in parsed.occurrences] == ["20261116T150000Z"]


def test_the_hubs_own_exported_events_are_not_imported_back():
    data = calendar(
        event("DTSTART:20261021T190000Z", "DTEND:20261021T200000Z", uid="1234@clinic-hub"),
        event("DTSTART:20261021T190000Z", "DTEND:20261021T200000Z", uid="other"),
    )
    parsed = parse(data)
    assert [o.uid for o in parsed.occurrences] == ["other"] and parsed.skipped_own == 1


def test_events_carry_no_title_and_cancelled_or_free_time_is_an_authoritative_gone():
    events = {e.external_id: e for e in occurrences_to_events(parse("google.ics"), platform="ics_feed")}
    single = events["0single1utc@google.com"]
    assert not single.deleted and single.status == "scheduled" and single.patient_key == ""
    assert "Bob" not in repr(single)  # the title stays out of what reaches the database
    assert events["0free1@google.com"].deleted and events["0cancelled1@google.com"].deleted
    busy = occurrences_to_events(parse("google.ics"), platform="ics_feed", as_busy=True)
    assert all(e.busy_only for e in busy)


def test_the_same_file_gives_the_same_versions_and_a_change_a_new_one():
    first = {
        (e.external_id, e.recurrence_id): e.version
        for e in occurrences_to_events(parse("google.ics"), platform="x")
    }
    again = {
        (e.external_id, e.recurrence_id): e.version
        for e in occurrences_to_events(parse("google.ics"), platform="x")
    }
    assert first == again
    moved = (FIXTURES / "google.ics").read_bytes().replace(b"20261021T190000Z", b"20261021T180000Z")
    changed = {
        (e.external_id, e.recurrence_id): e.version for e in occurrences_to_events(parse(moved), platform="x")
    }
    assert [k for k in first if first[k] != changed[k]] == [("0single1utc@google.com", "")]


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"", "no VCALENDAR", None),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTA",
            "ends mid-line inside VEVENT (begun at line 2)",
            4,
        ),
        (b"hello world\r\n", "not an iCalendar content line", 1),
        (
            ics("BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", "UID:a", "DTSTART:20261021T190000Z"),
            "ends inside VEVENT (begun at line 3): it is truncated",
            5,
        ),
        (
            ics(
                "BEGIN:VCALENDAR",
                "BEGIN:VEVENT",
                "UID:a",
                "DTSTART:20261021T190000Z",
                "END:VTODO",
                "END:VCALENDAR",
            ),
            "END:VTODO closes BEGIN:VEVENT of line 2",
            5,
        ),
        (
            calendar(event("DTSTART:2026102xT190000Z")),
            "the value of DTSTART cannot be read",
            7,
        ),
        (
            calendar(event("DTSTART:20261021T190000Z", "DTEND 20261021T200000Z")),
            "not an iCalendar content line",
            8,
        ),
        (calendar(["BEGIN:VEVENT", "DTSTART:20261021T190000Z", "END:VEVENT"]), "without a UID", 4),
        (calendar(event("SUMMARY:x")), "has no DTSTART", 4),
        (
            calendar(event("DTSTART;TZID=Mars/Olympus:20261021T190000")),
            "DTSTART uses a TZID that is neither",
            7,
        ),
        (
            ics("BEGIN:VCALENDAR", "END:VCALENDAR", "BEGIN:VCALENDAR", "END:VCALENDAR"),
            "a second VCALENDAR",
            3,
        ),
        (b"BEGIN:VCALENDAR\r\nX-NAME:caf\xe9\r\nEND:VCALENDAR\r\n", "not UTF-8", 2),
        (ics(" folded", "BEGIN:VCALENDAR", "END:VCALENDAR"), "nothing to continue", 1),
    ],
)
def test_malformed_files_are_refused_with_what_and_where(data, message, line):
    with pytest.raises(IcsError) as refused:
        parse(data)
    assert message in refused.value.message
    assert refused.value.line == line
    if line:
        assert refused.value.message.startswith(f"line {line}: ")


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    data = (FIXTURES / "google.ics").read_bytes()
    with pytest.raises(IcsError, match="the limit is 1 000"):
        parse(data, max_bytes=1000)
    assert parse(data, max_bytes=len(data)).events == 6


def test_folded_lines_and_a_trailing_blank_line_are_fine():
    data = ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:fold",
        "DTSTART:20261021T19",
        " 0000Z",
        "SUMMARY:A very long",
        "  title",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    )
    (occ,) = parse(data).occurrences
    assert occ.start == datetime(2026, 10, 21, 19, tzinfo=UTC) and occ.title == "A very long title"
