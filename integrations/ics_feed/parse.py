"""Reading .ics files and feeds: strict validation, then recurrence expansion over a window. Pure: no ORM.

* **Strict.** A malformed or truncated file is refused as a whole, with what is wrong and where (the line),
  before anything is applied: bad content lines, BEGIN/END that do not match, a file that ends inside a
  component, more than one VCALENDAR, values icalendar cannot read, VEVENTs without UID or DTSTART, and time
  zones that are neither IANA names, Windows names (mapped by icalendar's CLDR table) nor defined by a
  VTIMEZONE in the file. Files over ``max_bytes`` are refused before parsing.
* **Expansion** (``recurring-ical-events``): RRULE, RDATE, EXDATE and RECURRENCE-ID overrides, in the
  event's own zone, so a weekly 10:00 stays at 10:00 local across a clock change. Google's X-WR-TIMEZONE is
  honoured (``x-wr-timezone``). Floating times and all-day events are read in ``default_zone`` (the
  therapist's). Only series go through the expander; single events are read directly (most of a large file).
* **Identity**: UID + RECURRENCE-ID (the occurrence's original start in UTC, ``YYYYMMDDTHHMMSSZ``, or the
  date for all-day series); single events have an empty recurrence id, so moving one updates it in place.

Titles are returned only in memory (a SimplePractice title is turned into a keyed pseudonym by the
caller); nothing here is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

# RFC 5545 §3.1: name *(";" param) ":" value; names are IANA tokens or X- names.
_CONTENT_LINE = re.compile(
    rb'[A-Za-z0-9-]+(?:;[A-Za-z0-9-]+=(?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*)*:'
)
_COMPONENTS_CHECKED = {"VCALENDAR", "VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT"}
HUB_UID_SUFFIX = "@clinic-hub"  # scheduler.ical.UID_DOMAIN: our own events coming back


class IcsError(ValueError):
    """The file is refused; ``line`` is the 1-based physical line where the problem is, when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.message = f"line {line}: {message}" if line else message
        self.line = line
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class Occurrence:
    uid: str
    recurrence_id: str  # "" for a single event
    start: datetime  # aware
    end: datetime  # aware
    all_day: bool = False
    cancelled: bool = False  # STATUS:CANCELLED (or METHOD:CANCEL)
    transparent: bool = False  # TRANSP:TRANSPARENT: free time
    title: str = ""  # SUMMARY, in memory only
    sequence: int = 0
    zone: str = ""  # the zone the event was written in ("" for UTC, "floating" for floating times)


@dataclass
class ParsedCalendar:
    occurrences: list[Occurrence] = field(default_factory=list)
    events: int = 0  # VEVENT components in the file
    series: int = 0  # UIDs with recurrence
    skipped_own: int = 0  # the hub's own exported events, not imported back
    producer: str = ""


def check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise IcsError(
            f"The file is {size:,} bytes; the limit is {max_bytes:,} (ICS_IMPORT_MAX_BYTES).".replace(
                ",", " "
            )
        )


def _structure(data: bytes) -> tuple[list[int], list[dict[str, int]]]:
    """Validate the content lines and nesting; return each VEVENT's first line and its properties' lines."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IcsError(f"not UTF-8 text (byte {exc.start}: {exc.reason}).", line=line) from None
    stack: list[tuple[str, int]] = []
    calendars = 0
    event_lines: list[int] = []
    event_props: list[dict[str, int]] = []
    current_props: dict[str, int] | None = None
    logical: bytes | None = None
    logical_line = 0

    def check(content: bytes, number: int) -> None:
        nonlocal calendars, current_props
        if not _CONTENT_LINE.match(content):
            shown = content[:60].decode("utf-8", "replace")
            raise IcsError(f"not an iCalendar content line (NAME[;PARAM=..]:VALUE): {shown!r}", line=number)
        name = content.split(b":", 1)[0].split(b";", 1)[0].upper()
        if name in (b"BEGIN", b"END"):
            value = content.split(b":", 1)[1].strip().upper().decode("utf-8", "replace")
            if name == b"BEGIN":
                if not stack and value != "VCALENDAR":
                    raise IcsError(f"BEGIN:{value} outside a VCALENDAR.", line=number)
                if value == "VCALENDAR":
                    if stack:
                        raise IcsError("BEGIN:VCALENDAR inside another component.", line=number)
                    calendars += 1
                    if calendars > 1:
                        raise IcsError("a second VCALENDAR; give one calendar per file.", line=number)
                if value == "VEVENT":
                    event_lines.append(number)
                    current_props = {}
                    event_props.append(current_props)
                stack.append((value, number))
            else:
                if not stack:
                    raise IcsError(f"END:{value} without a matching BEGIN.", line=number)
                opened, at = stack.pop()
                if opened != value:
                    raise IcsError(f"END:{value} closes BEGIN:{opened} of line {at}.", line=number)
                if value == "VEVENT":
                    current_props = None
        elif not stack:
            raise IcsError("content outside BEGIN:VCALENDAR ... END:VCALENDAR.", line=number)
        elif current_props is not None:
            current_props.setdefault(name.decode("ascii", "replace"), number)

    last_line = 0
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        line = raw_line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):  # a folded continuation (RFC 5545 §3.1)
            if logical is None:
                raise IcsError("a continuation line with nothing to continue.", line=number)
            logical += line[1:]
            continue
        if logical is not None:
            check(logical, logical_line)
            logical = None
        if not line.strip():
            continue
        logical, logical_line = line, number
        last_line = number
    if logical is not None:
        try:
            check(logical, logical_line)
        except IcsError:
            if stack:  # a last line broken off mid-way: say what happened, not just that the line is bad
                opened, at = stack[-1]
                raise IcsError(
                    f"the file ends mid-line inside {opened} (begun at line {at}): it is truncated.",
                    line=logical_line,
                ) from None
            raise
    if stack:
        opened, at = stack[-1]
        raise IcsError(
            f"the file ends inside {opened} (begun at line {at}): it is truncated or incomplete.",
            line=last_line,
        )
    if calendars == 0:
        raise IcsError("no VCALENDAR in the file.")
    return event_lines, event_props


def _aware(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), tzinfo=zone)


def _recurrence_key(value: date | datetime, zone: tzinfo) -> str:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    return _aware(value, zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _zone_label(value: date | datetime) -> str:
    if not isinstance(value, datetime):
        return "all-day"
    if value.tzinfo is None:
        return "floating"
    return str(getattr(value.tzinfo, "key", "") or value.tzname() or "")


def _check_times(event: icalendar.Event, where: int, props: dict[str, int]) -> None:
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        prop = event.get(name)
        if prop is None:
            continue
        tzid = prop.params.get("TZID")
        value = prop.dt
        if tzid and isinstance(value, datetime) and value.tzinfo is None:
            raise IcsError(
                f"{name} uses the time zone {tzid!r}, which is neither an IANA or Windows zone name nor "
                "defined by a VTIMEZONE in the file.",
                line=props.get(name, where),
            )


def parse_calendar(
    data: bytes,
    *,
    window: tuple[datetime, datetime],
    default_zone: str,
    max_bytes: int | None = None,
) -> ParsedCalendar:
    """Validate ``data`` and return every occurrence that intersects ``window``; raise IcsError to refuse."""
    check_size(len(data), max_bytes)
    event_lines, event_props = _structure(data)
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:  # structure passed our check, so this is a value icalendar refuses
        raise IcsError(f"unreadable calendar: {exc}") from None
    zone = ZoneInfo(default_zone)
    result = ParsedCalendar(producer=str(cal.get("PRODID", "")))
    # Errors icalendar recorded instead of raising (a date it cannot read, a broken line).
    for component in cal.walk():
        if component.errors and component.name in _COMPONENTS_CHECKED:
            prop, message = component.errors[0]
            line = None
            if component.name == "VEVENT":
                index = next(i for i, e in enumerate(cal.walk("VEVENT")) if e is component)
                line = event_props[index].get(str(prop), event_lines[index]) if prop else event_lines[index]
            raise IcsError(f"{component.name}: {prop + ': ' if prop else ''}{message}", line=line)
    method_cancel = str(cal.get("METHOD", "")).upper() == "CANCEL"
    lo, hi = window
    events = cal.walk("VEVENT")
    result.events = len(events)
    recurring_uids: set[str] = set()
    for index, event in enumerate(events):
        where = event_lines[index] if index < len(event_lines) else None
        props = event_props[index] if index < len(event_props) else {}
        uid = str(event.get("UID", "")).strip()
        if not uid:
            raise IcsError("a VEVENT without a UID (it could not be re-imported idempotently).", line=where)
        if event.get("DTSTART") is None:
            raise IcsError(f"VEVENT {uid!r} has no DTSTART.", line=where)
        _check_times(event, where or 0, props)
        if event.get("RRULE") or event.get("RDATE") or event.get("RECURRENCE-ID"):
            recurring_uids.add(uid)
    result.series = len(recurring_uids)

    def occurrence(event: Any, recurrence_id: str) -> Occurrence | None:
        uid = str(event["UID"]).strip()
        start_value = event["DTSTART"].dt
        if event.get("DTEND") is not None:
            end_value = event["DTEND"].dt
        elif event.get("DURATION") is not None:
            end_value = start_value + event["DURATION"].dt
        else:  # RFC 5545 §3.6.1: a date lasts the day; a date-time takes no time
            end_value = start_value + (
                timedelta(days=1) if not isinstance(start_value, datetime) else timedelta()
            )
        start, end = _aware(start_value, zone), _aware(end_value, zone)
        if not (start < hi and end > lo):
            return None
        return Occurrence(
            uid=uid,
            recurrence_id=recurrence_id,
            start=start,
            end=end,
            all_day=not isinstance(start_value, datetime),
            cancelled=method_cancel or str(event.get("STATUS", "")).upper() == "CANCELLED",
            transparent=str(event.get("TRANSP", "")).upper() == "TRANSPARENT",
            title=str(event.get("SUMMARY", "")),
            sequence=int(event.get("SEQUENCE", 0) or 0),
            zone=event["DTSTART"].params.get("TZID") or _zone_label(start_value),
        )

    series_cal = icalendar.Calendar()
    for tz in cal.walk("VTIMEZONE"):
        series_cal.add_component(tz)
    if cal.get("X-WR-TIMEZONE"):
        # Google's calendar zone: a series written in UTC repeats at the same local time in that zone
        # (recurring-ical-events applies x-wr-timezone). Single events need nothing: their instant is
        # the same either way.
        wr_zone = str(cal["X-WR-TIMEZONE"])
        try:
            ZoneInfo(wr_zone)
        except (ValueError, KeyError):
            raise IcsError(f"X-WR-TIMEZONE {wr_zone!r} is not a time zone name.") from None
        series_cal.add("X-WR-TIMEZONE", wr_zone)
    for event in events:
        uid = str(event["UID"]).strip()
        if uid.endswith(HUB_UID_SUFFIX):
            result.skipped_own += 1
            continue
        if uid in recurring_uids:
            series_cal.add_component(event)
            continue
        found = occurrence(event, "")
        if found is not None:
            result.occurrences.append(found)
    if recurring_uids:
        # A day of margin on each side: floating and all-day occurrences are compared after placing them
        # in the therapist's zone.
        query = recurring_ical_events.of(series_cal)
        try:
            expanded = list(query.between(lo - timedelta(days=1), hi + timedelta(days=1)))
        except Exception as exc:  # the library's errors for a bad RRULE and the like
            raise IcsError(f"a recurring event could not be expanded: {exc}") from None
        # EXDATEs are an explicit "this occurrence is gone": reported as cancelled occurrences, so an
        # occurrence imported before its EXDATE was added is cancelled even from a (non-complete) upload.
        for master in series_cal.walk("VEVENT"):
            if master.get("RECURRENCE-ID") is not None or master.get("EXDATE") is None:
                continue
            start_value = master["DTSTART"].dt
            length = (
                master["DTEND"].dt - start_value
                if master.get("DTEND") is not None
                else master["DURATION"].dt
                if master.get("DURATION") is not None
                else timedelta(days=0 if isinstance(start_value, datetime) else 1)
            )
            exdates = master["EXDATE"] if isinstance(master["EXDATE"], list) else [master["EXDATE"]]
            for prop in exdates:
                for value in prop.dts:
                    excluded = value.dt
                    if isinstance(start_value, datetime) and not isinstance(excluded, datetime):
                        continue  # a date EXDATE on a timed series: ambiguous, left to the expander
                    begin = _aware(excluded, zone)
                    if not (begin < hi and begin + length > lo):
                        continue
                    result.occurrences.append(
                        Occurrence(
                            uid=str(master["UID"]).strip(),
                            recurrence_id=_recurrence_key(excluded, zone),
                            start=begin,
                            end=begin + length,
                            all_day=not isinstance(excluded, datetime),
                            cancelled=True,
                            zone=prop.params.get("TZID", ""),
                        )
                    )
        for event in expanded:
            rid = event.get("RECURRENCE-ID")
            key = _recurrence_key(rid.dt if rid is not None else event["DTSTART"].dt, zone)
            found = occurrence(event, key)
            if found is not None:
                result.occurrences.append(found)
    return result
