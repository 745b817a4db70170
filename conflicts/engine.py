"""Pure conflict detection for therapists' schedules (standard library only).

Semantics (a contract with the callers):

- Every datetime is aware and is compared as an instant; the engine converts to UTC first because
  Python compares two datetimes sharing one tzinfo by wall clock, which is wrong in a DST fold.
  Finding.start/end are returned in UTC.
- Intervals are half-open, ``[start, end)``: back-to-back appointments never clash.
- ``overlap``: two slots of one therapist whose buffer-padded intervals
  ``[start - buffer_before, end + buffer_after)`` intersect; one finding per pair; the extent is the
  intersection of the unpadded intervals, or of the padded ones if only those intersect.
- ``outside_hours``: a slot not wholly covered by the union of its therapist's weekly working
  intervals (local wall-clock times in the therapist's zone, per local date, so "24:00" on one day and
  "00:00" on the next join up), or intersecting any time off. One finding per slot; therapists
  without a WorkingWeek are skipped.
- ``external_busy``: a slot intersecting an external busy block of its therapist; one per pair.
- ``patient_overlap``: two slots with the same known patient_ref that intersect, whatever the
  therapists; therapist_id is None unless both slots belong to the same therapist.
- ``duplicate``: the same visit from two source systems: same therapist, different source_system,
  start and end each within a tolerance, patient refs equal or at least one unknown ("").
- ``detect_all`` runs all five; a pair reported as duplicate is not also reported as overlap.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from zoneinfo import ZoneInfo

OVERLAP = "overlap"
OUTSIDE_HOURS = "outside_hours"
EXTERNAL_BUSY = "external_busy"
PATIENT_OVERLAP = "patient_overlap"
DUPLICATE = "duplicate"

DAY_NAMES: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Hours = Mapping[int, tuple[tuple[time, time], ...]]


@dataclass(frozen=True, slots=True)
class Slot:
    """One occupying appointment as the engine sees it."""

    id: int
    therapist_id: int
    start: datetime
    end: datetime
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    patient_ref: str = ""
    source_system: str = "hub"


@dataclass(frozen=True, slots=True)
class Block:
    """External busy time of a therapist."""

    id: int
    therapist_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class WorkingWeek:
    """One therapist's availability rules; an end of time(0) means midnight at the end of that day."""

    tz: ZoneInfo
    hours: Hours
    time_off: tuple[tuple[datetime, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected conflict."""

    kind: str
    appointment_ids: tuple[int, ...]
    busy_block_ids: tuple[int, ...] = ()
    therapist_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def fingerprint(self) -> str:
        """Stable identity for idempotent persistence."""
        appointments = ",".join(str(i) for i in sorted(self.appointment_ids))
        blocks = ",".join(str(i) for i in sorted(self.busy_block_ids))
        return f"{self.kind}:a{appointments}:b{blocks}"


class WorkingHoursError(ValueError):
    """Working hours that cannot be parsed."""


# --- working hours ------------------------------------------------------------------------------

_INTERVAL_RE = re.compile(r"^([0-9]{2}):([0-9]{2})\s*-\s*([0-9]{2}):([0-9]{2})$")


def _minutes(hour: str, minute: str) -> int | None:
    """Minutes since midnight for "HH", "MM", allowing 24:00; None when out of range."""
    h, m = int(hour), int(minute)
    if m > 59 or h > 24 or (h == 24 and m != 0):
        return None
    return h * 60 + m


def _time_of(minutes: int) -> time:
    """The time for minutes since midnight; 24:00 becomes time(0)."""
    return time((minutes // 60) % 24, minutes % 60)


def parse_working_hours(data: Mapping[str, Sequence[str]]) -> dict[int, tuple[tuple[time, time], ...]]:
    """Parse {"monday": ["09:00-12:00", ...], ...} into {weekday: ((start, end), ...)}."""
    parsed: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, values in data.items():
        if day not in DAY_NAMES:
            raise WorkingHoursError(f"{day!r}: unknown day; expected one of {', '.join(DAY_NAMES)}")
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise WorkingHoursError(f'{day}: expected a list of "HH:MM-HH:MM" strings, got {values!r}')
        spans: list[tuple[int, int, str]] = []
        for value in values:
            match = _INTERVAL_RE.match(value.strip()) if isinstance(value, str) else None
            if match is None:
                raise WorkingHoursError(f'{day}: {value!r}: expected "HH:MM-HH:MM" (24-hour clock)')
            start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
            if start is None or end is None or start == 24 * 60:
                raise WorkingHoursError(f'{day}: "{value}": not a valid time of day')
            if start >= end:
                raise WorkingHoursError(f'{day}: "{value}": start must be before end')
            spans.append((start, end, value))
        spans.sort()
        for (_, prev_end, prev), (start, _, value) in zip(spans, spans[1:], strict=False):
            if start < prev_end:
                raise WorkingHoursError(f'{day}: "{prev}" and "{value}" overlap')
        if spans:
            parsed[DAY_NAMES.index(day)] = tuple((_time_of(s), _time_of(e)) for s, e, _ in spans)
    return dict(sorted(parsed.items()))


def format_working_hours(parsed: Hours) -> dict[str, list[str]]:
    """Inverse of parse_working_hours."""
    formatted: dict[str, list[str]] = {}
    for weekday in sorted(parsed):
        if parsed[weekday]:
            formatted[DAY_NAMES[weekday]] = [
                f"{s:%H:%M}-{'24:00' if e == time(0) else f'{e:%H:%M}'}" for s, e in parsed[weekday]
            ]
    return formatted


# --- normalisation ------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the conflict engine needs aware datetimes")
    return value.astimezone(UTC)


# (padded start, padded end, start, end, slot), all in UTC.
_Rec = tuple[datetime, datetime, datetime, datetime, Slot]


def _records(slots: Iterable[Slot]) -> list[_Rec]:
    """Slots with their UTC and padded UTC bounds, in input order."""
    records: list[_Rec] = []
    for slot in slots:
        start, end = _utc(slot.start), _utc(slot.end)
        records.append((start - slot.buffer_before, end + slot.buffer_after, start, end, slot))
    return records


def _by_therapist(records: Iterable[_Rec]) -> dict[int, list[_Rec]]:
    """Records grouped by therapist id."""
    groups: dict[int, list[_Rec]] = defaultdict(list)
    for record in records:
        groups[record[4].therapist_id].append(record)
    return groups


def _pair(a: int, b: int) -> tuple[int, int]:
    """Two ids in ascending order."""
    return (a, b) if a <= b else (b, a)


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Findings in the deterministic order (kind, appointment ids, block ids)."""
    findings.sort(key=lambda f: (f.kind, f.appointment_ids, f.busy_block_ids))
    return findings


def _intersecting_pairs(items: list[_Rec], lo: int, hi: int) -> Iterator[tuple[_Rec, _Rec]]:
    """Every pair whose [item[lo], item[hi]) intervals intersect; sweep line, O(n log n + k)."""
    items = sorted(items, key=itemgetter(lo))
    active: list[tuple[datetime, int]] = []  # min-heap of (end, index) of intervals still open
    for index, item in enumerate(items):
        start = item[lo]
        while active and active[0][0] <= start:
            heapq.heappop(active)
        # Everything still active started no later than this item and ends after its start.
        for _, other in active:
            yield items[other], item
        heapq.heappush(active, (item[hi], index))


# --- detectors ----------------------------------------------------------------------------------


def _overlaps(records: list[_Rec]) -> list[Finding]:
    """Overlap findings from normalised records."""
    findings: list[Finding] = []
    for therapist_id, group in _by_therapist(records).items():
        for a, b in _intersecting_pairs(group, 0, 1):
            start, end = max(a[2], b[2]), min(a[3], b[3])
            if start >= end:
                start, end = max(a[0], b[0]), min(a[1], b[1])
            findings.append(Finding(OVERLAP, _pair(a[4].id, b[4].id), (), therapist_id, start, end))
    return _ordered(findings)


def find_overlaps(slots: Iterable[Slot]) -> list[Finding]:
    """Pairs of one therapist's slots whose buffer-padded intervals intersect."""
    return _overlaps(_records(slots))


def _local_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time; time(0) as an end is handled by the caller."""
    # fold=0 makes this deterministic: a nonexistent time (spring-forward gap) is read with the offset
    # in force before the transition, an ambiguous one (fall-back) as its first occurrence.
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, non-empty intervals with overlapping or touching ones joined."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


class _Availability:
    """A WorkingWeek turned into UTC instants, computed per local date on demand."""

    def __init__(self, week: WorkingWeek) -> None:
        self.week = week
        self.days: dict[date, list[tuple[datetime, datetime]]] = {}
        self.off = _merge((_utc(s), _utc(e)) for s, e in week.time_off)
        self.off_starts = [s for s, _ in self.off]

    def working(self, day: date) -> list[tuple[datetime, datetime]]:
        """Merged working intervals of one local date, in UTC."""
        if day not in self.days:
            tz = self.week.tz
            intervals = []
            for start, end in self.week.hours.get(day.weekday(), ()):
                end_day = day + timedelta(days=1) if end == time(0) else day
                intervals.append((_local_instant(day, start, tz), _local_instant(end_day, end, tz)))
            self.days[day] = _merge(intervals)
        return self.days[day]

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies inside working time and misses all time off."""
        tz = self.week.tz
        day = start.astimezone(tz).date()
        intervals = self.days.get(day) or self.working(day)
        for low, high in intervals:
            if low <= start and end <= high:
                break
        else:
            # Slow path: the slot may run on into the next day's hours. A day's intervals can fall
            # outside its own local date around transitions at midnight (Chile falls back at 24:00),
            # so neighbouring days are joined in too.
            last = end.astimezone(tz).date()
            days = [day + timedelta(days=n) for n in range(-1, (last - day).days + 2)]
            merged = _merge(interval for d in days for interval in self.working(d))
            if not any(low <= start and end <= high for low, high in merged):
                return False
        # Time off is merged and sorted, so only the last block starting before `end` can reach `start`.
        index = bisect_left(self.off_starts, end) - 1
        return index < 0 or self.off[index][1] <= start


def _outside_hours(records: list[_Rec], weeks: Mapping[int, WorkingWeek]) -> list[Finding]:
    """Outside-hours findings from normalised records."""
    availability = {therapist_id: _Availability(week) for therapist_id, week in weeks.items()}
    findings: list[Finding] = []
    for _, _, start, end, slot in records:
        rules = availability.get(slot.therapist_id)
        if rules is not None and not rules.covers(start, end):
            findings.append(Finding(OUTSIDE_HOURS, (slot.id,), (), slot.therapist_id, start, end))
    return _ordered(findings)


def find_outside_hours(slots: Iterable[Slot], weeks: Mapping[int, WorkingWeek]) -> list[Finding]:
    """Slots not wholly inside their therapist's working hours, or touching time off."""
    return _outside_hours(_records(slots), weeks)


def _external_busy(records: list[_Rec], blocks: Iterable[Block]) -> list[Finding]:
    """External-busy findings from normalised records."""
    # One sweep over slots and blocks together; a clash is reported when its later-starting side
    # arrives, against the other kind's intervals still open. Empty blocks occupy no time: dropped.
    events: dict[int, list[tuple[datetime, datetime, int, Slot | Block]]] = defaultdict(list)
    for _, _, start, end, slot in records:
        events[slot.therapist_id].append((start, end, 0, slot))
    for block in blocks:
        start, end = _utc(block.start), _utc(block.end)
        if start < end:
            events[block.therapist_id].append((start, end, 1, block))
    findings: list[Finding] = []
    for therapist_id, items in events.items():
        items.sort(key=itemgetter(0))
        open_slots: list[tuple[datetime, int]] = []
        open_blocks: list[tuple[datetime, int]] = []
        for index, (start, end, is_block, item) in enumerate(items):
            for heap in (open_slots, open_blocks):
                while heap and heap[0][0] <= start:
                    heapq.heappop(heap)
            for _, other_index in open_slots if is_block else open_blocks:
                other = items[other_index]
                slot, block = (other[3], item) if is_block else (item, other[3])
                findings.append(
                    Finding(EXTERNAL_BUSY, (slot.id,), (block.id,), therapist_id, start, min(end, other[1]))
                )
            heapq.heappush(open_blocks if is_block else open_slots, (end, index))
    return _ordered(findings)


def find_external_busy(slots: Iterable[Slot], blocks: Iterable[Block]) -> list[Finding]:
    """(slot, block) pairs of one therapist whose unpadded intervals intersect."""
    return _external_busy(_records(slots), blocks)


def _patient_overlaps(records: list[_Rec]) -> list[Finding]:
    """Patient-overlap findings from normalised records."""
    by_patient: dict[str, list[_Rec]] = defaultdict(list)
    for record in records:
        if record[4].patient_ref:
            by_patient[record[4].patient_ref].append(record)
    findings: list[Finding] = []
    for group in by_patient.values():
        for a, b in _intersecting_pairs(group, 2, 3):
            sa, sb = a[4], b[4]
            therapist_id = sa.therapist_id if sa.therapist_id == sb.therapist_id else None
            start, end = max(a[2], b[2]), min(a[3], b[3])
            findings.append(Finding(PATIENT_OVERLAP, _pair(sa.id, sb.id), (), therapist_id, start, end))
    return _ordered(findings)


def find_patient_overlaps(slots: Iterable[Slot]) -> list[Finding]:
    """Pairs of slots for the same known patient that intersect, whatever the therapists."""
    return _patient_overlaps(_records(slots))


def _duplicates(records: list[_Rec], tolerance: timedelta) -> list[Finding]:
    """Duplicate findings from normalised records."""
    if tolerance < timedelta(0):
        raise ValueError(f"duplicate tolerance must not be negative, got {tolerance}")
    findings: list[Finding] = []
    for therapist_id, group in _by_therapist(records).items():
        group.sort(key=itemgetter(2))
        for i, (_, _, start, end, slot) in enumerate(group):
            for j in range(i + 1, len(group)):
                _, _, other_start, other_end, other = group[j]
                if other_start - start > tolerance:
                    break
                if (
                    other.source_system != slot.source_system
                    and abs(other_end - end) <= tolerance
                    and (other.patient_ref == slot.patient_ref or "" in (other.patient_ref, slot.patient_ref))
                ):
                    clash_start, clash_end = other_start, min(end, other_end)
                    if clash_start >= clash_end:  # very short visits can be near without touching
                        clash_start, clash_end = start, max(end, other_end)
                    findings.append(
                        Finding(DUPLICATE, _pair(slot.id, other.id), (), therapist_id, clash_start, clash_end)
                    )
    return _ordered(findings)


def find_duplicates(slots: Iterable[Slot], tolerance: timedelta = timedelta(minutes=5)) -> list[Finding]:
    """Pairs of one therapist's slots from different sources that look like the same visit."""
    return _duplicates(_records(slots), tolerance)


def detect_all(
    slots: Iterable[Slot],
    blocks: Iterable[Block],
    weeks: Mapping[int, WorkingWeek],
    *,
    duplicate_tolerance: timedelta = timedelta(minutes=5),
) -> list[Finding]:
    """All five kinds of finding, in the order (kind, appointment ids, block ids)."""
    records = _records(slots)
    duplicates = _duplicates(records, duplicate_tolerance)
    duplicate_pairs = {finding.appointment_ids for finding in duplicates}
    overlaps = [f for f in _overlaps(records) if f.appointment_ids not in duplicate_pairs]
    return _ordered(
        duplicates
        + overlaps
        + _outside_hours(records, weeks)
        + _external_busy(records, blocks)
        + _patient_overlaps(records)
    )
