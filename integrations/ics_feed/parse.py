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

* **Limits** (``ExpansionLimits``, from the ICS_IMPORT_* settings): occurrences per event and per file, a
  minimum interval between occurrences of one occupying event, a bound on how far a rule iterates before
  the window, and a time budget. Expansion is lazy (each series' generator, stopped at the cap); a file
  over a limit is refused naming the event's UID and line.
* **Lenient where calendar apps are**: a malformed RRULE is ignored with a warning and the event keeps its
  first instance (as Google and Apple Calendar do); a UID (or UID + RECURRENCE-ID) repeated in one file
  keeps the later SEQUENCE, then the later DTSTAMP, then the later in the file, with a warning; a
  single-valued property given twice keeps the first; content after END:VCALENDAR (or a misspelt
  END:VCALENDAR line) is ignored with a warning. Messages name lines, properties and UIDs, never values.

Titles are returned only in memory (a SimplePractice title is turned into a keyed pseudonym by the
caller); nothing here is stored.
"""

from __future__ import annotations

import re
import time as monotonic_clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil.rrule import rrulestr

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
    warnings: list[str] = field(default_factory=list)  # accepted leniently; never a value from the file


@dataclass(frozen=True, slots=True)
class ExpansionLimits:
    """Hard limits on recurrence expansion (settings ICS_IMPORT_MAX_OCCURRENCES*, _MIN_INTERVAL_MINUTES,
    _EXPANSION_SECONDS). ``max_steps`` bounds how many rule steps a series may take before the window."""

    per_event: int = 1000
    per_file: int = 50_000
    min_interval: timedelta = timedelta(minutes=5)
    seconds: float = 10.0
    max_steps: int = 200_000

    @classmethod
    def from_settings(cls) -> ExpansionLimits:
        from django.conf import settings

        return cls(
            per_event=settings.ICS_IMPORT_MAX_OCCURRENCES_PER_EVENT,
            per_file=settings.ICS_IMPORT_MAX_OCCURRENCES,
            min_interval=timedelta(minutes=settings.ICS_IMPORT_MIN_INTERVAL_MINUTES),
            seconds=float(settings.ICS_IMPORT_EXPANSION_SECONDS),
        )


def check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise IcsError(
            f"The file is {size:,} bytes; the limit is {max_bytes:,} (ICS_IMPORT_MAX_BYTES).".replace(
                ",", " "
            )
        )


def _structure(data: bytes) -> tuple[list[int], list[dict[str, int]], bytes, list[str]]:
    """Validate the content lines and nesting; return each VEVENT's first line and its properties' lines,
    the calendar to parse (what follows END:VCALENDAR cut off) and warnings. Messages never quote a value."""
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
    warnings: list[str] = []
    current_props: dict[str, int] | None = None
    logical: bytes | None = None
    logical_line = 0
    logical_offset = 0
    closed = False  # the VCALENDAR has ended
    misspelt_end = False

    def check(content: bytes, number: int) -> None:
        nonlocal calendars, current_props, closed, misspelt_end
        if not _CONTENT_LINE.match(content):
            raise IcsError("not an iCalendar content line (NAME[;PARAM=..]:VALUE).", line=number)
        name = content.split(b":", 1)[0].split(b";", 1)[0].upper()
        if name in (b"BEGIN", b"END"):
            value = content.split(b":", 1)[1].strip().upper().decode("utf-8", "replace")
            shown = value if re.fullmatch(r"[A-Z0-9-]{1,40}", value) else "(a component name)"
            if name == b"BEGIN":
                if not stack and value != "VCALENDAR":
                    raise IcsError(f"BEGIN:{shown} outside a VCALENDAR.", line=number)
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
                    raise IcsError(f"END:{shown} without a matching BEGIN.", line=number)
                opened, at = stack.pop()
                if opened != value:
                    if opened == "VCALENDAR" and not stack and value.startswith("VCALENDAR"):
                        # A misspelt last line (END:VCALENDARD): calendar apps read the file anyway.
                        warnings.append(f"line {number}: a misspelt END:VCALENDAR, read as END:VCALENDAR.")
                        misspelt_end = True
                    else:
                        raise IcsError(f"END:{shown} closes BEGIN:{opened} of line {at}.", line=number)
                if value == "VEVENT":
                    current_props = None
                if not stack:
                    closed = True
        elif not stack:
            raise IcsError("content outside BEGIN:VCALENDAR ... END:VCALENDAR.", line=number)
        elif current_props is not None:
            current_props.setdefault(name.decode("ascii", "replace"), number)

    last_line = 0
    cut: int | None = None  # where the calendar ends in ``data``
    offset = 0
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        line_offset, offset = offset, offset + len(raw_line) + 1
        line = raw_line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):  # a folded continuation (RFC 5545 §3.1)
            if logical is None:
                raise IcsError("a continuation line with nothing to continue.", line=number)
            logical += line[1:]
            continue
        if logical is not None:
            check(logical, logical_line)
            logical = None
            if closed and cut is None:
                cut = logical_offset if misspelt_end else line_offset
        if not line.strip():
            continue
        if closed:
            if line.upper().startswith(b"BEGIN:VCALENDAR"):
                raise IcsError("a second VCALENDAR; give one calendar per file.", line=number)
            # Content after the calendar's end (a mail footer, a second copy cut short): ignored, as
            # calendar apps do.
            warnings.append(f"line {number}: content after END:VCALENDAR, ignored.")
            break
        logical, logical_line, logical_offset = line, number, line_offset
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
        if closed and cut is None:
            cut = logical_offset if misspelt_end else len(data)
    if stack:
        opened, at = stack[-1]
        raise IcsError(
            f"the file ends inside {opened} (begun at line {at}): it is truncated or incomplete.",
            line=last_line,
        )
    if calendars == 0:
        raise IcsError("no VCALENDAR in the file.")
    if misspelt_end:
        data = data[:cut].rstrip(b"\r\n") + b"\r\nEND:VCALENDAR\r\n"
    elif cut is not None and cut < len(data):
        data = data[:cut]
    return event_lines, event_props, data, warnings


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
                f"{name} uses a TZID that is neither an IANA or Windows zone name nor defined by a VTIMEZONE "
                "in the file.",
                line=props.get(name, where),
            )


# Properties RFC 5545 allows once per VEVENT; icalendar returns a list when a producer repeats one.
_SINGLE_VALUED = ("UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "STATUS", "TRANSP", "SUMMARY")
_SINGLE_VALUED += ("SEQUENCE", "DTSTAMP")
_FREQ_STEP = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
    "MONTHLY": timedelta(days=28),
    "YEARLY": timedelta(days=365),
}
# RFC 5545 §3.3.10: (smallest, largest, may be negative)
_BY_RANGES = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_RULE_PARTS = {"FREQ", "UNTIL", "COUNT", "INTERVAL", "WKST", "BYDAY", *_BY_RANGES}
_NAME = re.compile(r"[A-Z][A-Z0-9-]{0,40}")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _safe_name(name: object) -> str:
    text = str(name).upper()
    return text if _NAME.fullmatch(text) else "a property"


def _event_name(uid: str, line: int | None) -> str:
    """How messages name an event: its UID (not its SUMMARY, which may name a patient) and line."""
    shown = uid if len(uid) <= 80 else uid[:77] + "..."
    return f"the event UID {shown!r}" + (f" (line {line})" if line else "")


def _rule_problem(rule: Any) -> str | None:
    """Why an RRULE cannot be used, naming the part (never its value); None when it can."""
    if not isinstance(rule, icalendar.vRecur):
        return "it is not a recurrence rule"
    unknown = sorted(set(rule) - _RULE_PARTS)
    if unknown:
        return f"it has the unsupported part {_safe_name(unknown[0])}"
    freq = str(_first(rule.get("FREQ", "")) or "").upper()
    if freq not in _FREQ_STEP:
        return "FREQ is missing or not a frequency"
    for part in ("INTERVAL", "COUNT"):
        values = rule.get(part)
        if values is not None:
            values = values if isinstance(values, list) else [values]
            if len(values) != 1 or not isinstance(values[0], int) or values[0] < 1:
                return f"{part} must be one positive integer"
    if "COUNT" in rule and "UNTIL" in rule:
        return "COUNT and UNTIL are both given"
    for part, (low, high, signed) in _BY_RANGES.items():
        values = rule.get(part, [])
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, int) or not (low <= (abs(value) if signed else value) <= high):
                return f"{part} is out of range"
    until = rule.get("UNTIL")
    if until is not None and not all(
        isinstance(v, date) for v in (until if isinstance(until, list) else [until])
    ):
        return "UNTIL is not a date"
    rest = icalendar.vRecur({k: v for k, v in rule.items() if k != "UNTIL"})
    try:
        rrulestr(rest.to_ical().decode("ascii", "replace"), dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return "it cannot be read as a recurrence rule"
    return None


def _rules(event: Any) -> list[Any]:
    rules = event.get("RRULE")
    return [] if rules is None else rules if isinstance(rules, list) else [rules]


def _stamp(event: Any, zone: tzinfo) -> datetime:
    prop = event.get("DTSTAMP")
    value = getattr(prop, "dt", None)
    return _aware(value, zone) if isinstance(value, date) else datetime.min.replace(tzinfo=UTC)


def _sequence(event: Any) -> int:
    try:
        return int(event.get("SEQUENCE", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _occupies(event: Any, method_cancel: bool) -> bool:
    return not (
        method_cancel
        or str(event.get("STATUS", "")).upper() == "CANCELLED"
        or str(event.get("TRANSP", "")).upper() == "TRANSPARENT"
    )


def parse_calendar(
    data: bytes,
    *,
    window: tuple[datetime, datetime],
    default_zone: str,
    max_bytes: int | None = None,
    limits: ExpansionLimits | None = None,
) -> ParsedCalendar:
    """Validate ``data`` and return every occurrence that intersects ``window``; raise IcsError to refuse."""
    limits = limits or ExpansionLimits.from_settings()
    check_size(len(data), max_bytes)
    event_lines, event_props, data, warnings = _structure(data)
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:  # structure passed our check, so this is a value icalendar refuses
        raise IcsError(
            f"unreadable calendar: a value icalendar cannot read ({type(exc).__name__})."
        ) from None
    zone = ZoneInfo(default_zone)
    result = ParsedCalendar(producer=str(_first(cal.get("PRODID", ""))), warnings=warnings)
    events = cal.walk("VEVENT")
    position = {id(e): i for i, e in enumerate(events)}

    def line_of(event: Any, prop: str | None = None) -> int | None:
        index = position.get(id(event))
        if index is None or index >= len(event_lines):
            return None
        return event_props[index].get(prop, event_lines[index]) if prop else event_lines[index]

    # Errors icalendar recorded instead of raising (a date it cannot read, a broken line).
    for component in cal.walk():
        if component.errors and component.name in _COMPONENTS_CHECKED:
            for prop, _message in component.errors:
                if component.name == "VEVENT" and str(prop).upper() == "RRULE":
                    continue  # an unreadable RRULE: handled with the other malformed rules below
                line = line_of(component, str(prop) if prop else None) if component.name == "VEVENT" else None
                what = f"the value of {_safe_name(prop)} cannot be read" if prop else "it cannot be read"
                raise IcsError(f"{component.name}: {what}.", line=line)
    unreadable_rule = {
        i for i, e in enumerate(events) if any(str(p).upper() == "RRULE" for p, _m in e.errors)
    }
    if cal.get("X-WR-TIMEZONE"):
        # Google's calendar zone: times written in UTC are read in that zone, exactly as the x-wr-timezone
        # package does (so a series written in UTC repeats at the same local time across a clock change).
        wr_zone = str(_first(cal["X-WR-TIMEZONE"]))
        try:
            ZoneInfo(wr_zone)
        except (ValueError, KeyError):
            warnings.append("X-WR-TIMEZONE is not a time zone name; ignored.")
        else:
            # The walker copies the events it changes, in order: positions (line numbers) carry over.
            cal = x_wr_timezone.to_standard(cal, timezone=wr_zone)
            events = cal.walk("VEVENT")
            position = {id(e): i for i, e in enumerate(events)}
    method_cancel = str(_first(cal.get("METHOD", ""))).upper() == "CANCEL"
    lo, hi = window
    result.events = len(events)
    for event in events:
        for name in _SINGLE_VALUED:
            if isinstance(event.get(name), list):
                event[name] = event[name][0]
                warnings.append(f"line {line_of(event, name)}: {name} is given twice; the first is used.")
    for event in events:
        where = line_of(event)
        uid = str(event.get("UID", "")).strip()
        if not uid:
            raise IcsError("a VEVENT without a UID (it could not be re-imported idempotently).", line=where)
        if event.get("DTSTART") is None:
            raise IcsError(f"{_event_name(uid, None)} has no DTSTART.", line=where)
        _check_times(event, where or 0, event_props[position[id(event)]] if where else {})
        # A malformed RRULE is ignored and the event keeps its first instance (Google and Apple Calendar
        # do the same), with a warning; an RRULE icalendar could not read at all counts as malformed.
        bad = position[id(event)] in unreadable_rule
        problem = "it cannot be read" if bad else next(filter(None, map(_rule_problem, _rules(event))), None)
        if problem:
            event.pop("RRULE", None)
            warnings.append(
                f"line {line_of(event, 'RRULE')}: the RRULE of {_event_name(uid, None)} is ignored "
                f"({problem}); only its first occurrence is imported."
            )

    # One VEVENT per UID (+ RECURRENCE-ID): as calendar apps do, the later SEQUENCE wins, then the later
    # DTSTAMP, then the later in the file.
    chosen: dict[tuple[str, str], Any] = {}
    for event in events:
        uid = str(event["UID"]).strip()
        rid = event.get("RECURRENCE-ID")
        key = (uid, _recurrence_key(rid.dt, zone) if rid is not None else "")
        kept = chosen.get(key)
        if kept is not None:
            newer = (_sequence(event), _stamp(event, zone)) >= (_sequence(kept), _stamp(kept, zone))
            winner = event if newer else kept
            warnings.append(
                f"line {line_of(event)}: {_event_name(uid, None)}"
                + (" with the same RECURRENCE-ID" if key[1] else "")
                + f" is given again (first at line {line_of(kept)}); the later version (SEQUENCE, then "
                f"DTSTAMP), at line {line_of(winner)}, is kept."
            )
            if not newer:
                continue
        chosen[key] = event
    events = list(chosen.values())
    recurring_uids: set[str] = set()
    for event in events:
        if event.get("RRULE") or event.get("RDATE") or event.get("RECURRENCE-ID"):
            recurring_uids.add(str(event["UID"]).strip())
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
            sequence=_sequence(event),
            zone=event["DTSTART"].params.get("TZID") or _zone_label(start_value),
        )

    def add(found: Occurrence | None) -> None:
        if found is None:
            return
        result.occurrences.append(found)
        if len(result.occurrences) > limits.per_file:
            raise IcsError(
                f"the file has more than {limits.per_file} occurrences in the window "
                "(ICS_IMPORT_MAX_OCCURRENCES); import a shorter window or split the file."
            )

    series_cal = icalendar.Calendar()
    for tz in cal.walk("VTIMEZONE"):
        series_cal.add_component(tz)
    masters: dict[str, list[Any]] = {}
    for event in events:
        uid = str(event["UID"]).strip()
        if uid.endswith(HUB_UID_SUFFIX):
            result.skipped_own += 1
            continue
        if uid in recurring_uids:
            masters.setdefault(uid, []).append(event)
            continue
        add(occurrence(event, ""))

    deadline = monotonic_clock.monotonic() + limits.seconds
    for uid, parts in masters.items():
        master = next((e for e in parts if e.get("RECURRENCE-ID") is None), parts[0])
        first_line = min(filter(None, (line_of(e) for e in parts)), default=None)
        name = _event_name(uid, first_line)
        occupying = _occupies(master, method_cancel)
        start_value = master["DTSTART"].dt
        for rule in _rules(master):
            freq = str(_first(rule["FREQ"])).upper()
            step = _FREQ_STEP[freq] * int(_first(rule.get("INTERVAL", 1)) or 1)
            if occupying and step < limits.min_interval:
                raise IcsError(
                    f"{name} repeats every {_plural(step)}; occurrences closer than "
                    f"{_plural(limits.min_interval)} are refused (ICS_IMPORT_MIN_INTERVAL_MINUTES)."
                )
            steps = max(0.0, (lo - _aware(start_value, zone)) / step)
            if rule.get("COUNT"):
                steps = min(steps, float(_first(rule["COUNT"])))
            if steps > limits.max_steps:
                raise IcsError(
                    f"{name} repeats every {_plural(step)} from long before the window (about {int(steps)} "
                    "repetitions before it); move its DTSTART closer."
                )
        one = icalendar.Calendar()
        one.subcomponents = [*series_cal.subcomponents, *parts]
        found: list[Occurrence] = []
        try:
            query = recurring_ical_events.of(one)
            # A day of margin on each side: floating and all-day occurrences are compared after placing
            # them in the therapist's zone. Lazy: the series' generator, stopped at the cap.
            for series in query.series:
                for item in series.between(lo - timedelta(days=1), hi + timedelta(days=1)):
                    event = item.as_component(False)
                    rid = event.get("RECURRENCE-ID")
                    key = _recurrence_key(rid.dt if rid is not None else event["DTSTART"].dt, zone)
                    occ = occurrence(event, key)
                    if occ is not None:
                        found.append(occ)
                        if len(found) > limits.per_event:
                            raise _Limit(
                                f"{name} has more than {limits.per_event} occurrences in the window "
                                "(ICS_IMPORT_MAX_OCCURRENCES_PER_EVENT)."
                            )
                    if monotonic_clock.monotonic() > deadline:
                        raise _Limit(
                            f"expanding the recurring events took over {limits.seconds:g} s "
                            f"(ICS_IMPORT_EXPANSION_SECONDS), stopped at {name}."
                        )
        except _Limit as exc:
            raise IcsError(str(exc)) from None
        except Exception as exc:  # the library's errors for a series it cannot expand
            warnings.append(
                f"line {first_line}: {_event_name(uid, None)} could not be expanded ({type(exc).__name__}); "
                "only the instances written out in the file are imported."
            )
            found = []
            for part in parts:
                rid = part.get("RECURRENCE-ID")
                occ = occurrence(part, _recurrence_key(rid.dt, zone) if rid is not None else "")
                if occ is not None:
                    found.append(occ)
        if occupying:
            starts = sorted({o.start for o in found if not (o.cancelled or o.transparent)})
            gaps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b - a < limits.min_interval]
            if gaps:
                raise IcsError(
                    f"{name} has occurrences {_plural(min(gaps))} apart; occurrences closer than "
                    f"{_plural(limits.min_interval)} are refused (ICS_IMPORT_MIN_INTERVAL_MINUTES)."
                )
        for occ in found:
            add(occ)
        _exdates(master, zone, window, add)
    return result


class _Limit(Exception):
    pass


def _plural(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 60 or seconds < 60:
        return f"{seconds} second" + ("s" if seconds != 1 else "")
    minutes = seconds // 60
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _exdates(master: Any, zone: tzinfo, window: tuple[datetime, datetime], add: Any) -> None:
    """EXDATEs are an explicit "this occurrence is gone": reported as cancelled occurrences, so an occurrence
    imported before its EXDATE was added is cancelled even from a (non-complete) upload."""
    lo, hi = window
    if master.get("RECURRENCE-ID") is not None or master.get("EXDATE") is None:
        return
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
            if isinstance(excluded, datetime) != isinstance(start_value, datetime):
                continue
            begin = _aware(excluded, zone)
            if not (begin < hi and begin + length > lo):
                continue
            add(
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
