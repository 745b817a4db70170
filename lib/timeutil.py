"""Time-zone helpers shared by every app."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .errors import InvalidInput

# Instants the hub accepts. Python's datetime ends at year 9999 and starts at year 1 with no room for an
# offset or a query margin (`9999-12-31T23:00-05:00` overflows on conversion to UTC, `0001-01-01` minus a
# buffer overflows in the clash query); no real appointment lies outside these years, so they are refused.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)


def instant_in_range(value: datetime, name: str = "") -> datetime:
    """An aware datetime as UTC, refused (InvalidInput) outside EARLIEST_INSTANT .. LATEST_INSTANT."""
    label = f"{name}: " if name else ""
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        raise InvalidInput(
            f"{label}{value.isoformat()} is out of range: times must lie between "
            f"{EARLIEST_INSTANT:%Y-%m-%d} and {LATEST_INSTANT - timedelta(days=1):%Y-%m-%d} (UTC)."
        )
    return utc


def require_aware(value: datetime, name: str) -> datetime:
    """Refuse naive datetimes (their zone is a guess) and out-of-range ones; return the instant in UTC."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a date and time, got {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must include a time zone offset (got naive {value.isoformat()}).")
    return instant_in_range(value, name)


def require_interval(
    start: datetime, end: datetime, *, max_length: timedelta | None = None
) -> tuple[datetime, datetime]:
    """Aware, start before end (zero length refused), and optionally no longer than max_length."""
    start, end = require_aware(start, "start"), require_aware(end, "end")
    if not start < end:
        raise InvalidInput(f"start ({start.isoformat()}) must be before end ({end.isoformat()}).")
    if max_length is not None and end - start > max_length:
        raise InvalidInput(f"{end - start} is longer than the {max_length} an appointment may last.")
    return start, end


def wall_clock_to_instant(day: date, clock: time, tz: str) -> datetime:
    """A wall-clock time in `tz` as an aware instant; a time skipped by a clock change is refused.

    An ambiguous time (clocks going back) means its first occurrence (fold=0), as people usually intend.
    """
    value = datetime.combine(day, clock, tzinfo=ZoneInfo(tz))
    instant_in_range(value)
    if value.astimezone(UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None) != value.replace(tzinfo=None):
        raise InvalidInput(f"{value:%Y-%m-%d %H:%M} does not exist in {tz} (the clocks change then).")
    return value


def format_local_range(start: datetime, end: datetime, tz: str) -> str:
    """E.g. "Mon 07 Dec 2026 10:00–10:50 EST" in the given zone."""
    s, e = start.astimezone(ZoneInfo(tz)), end.astimezone(ZoneInfo(tz))
    end_fmt = "%H:%M" if s.date() == e.date() else "%a %d %b %H:%M"
    return f"{s:%a %d %b %Y %H:%M}–{e.strftime(end_fmt)} {s.tzname()}"


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant from a platform ("2024-01-01 00:00:00+00:00", "...Z"); naive means UTC."""
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def version_stamp(moment: datetime) -> str:
    """A fixed-width UTC stamp, so that comparing versions (or cursors) as strings compares the instants."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
