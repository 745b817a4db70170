"""Pure conflict detection for therapists' schedules (standard library only).

Semantics (a contract with the callers):

- Every datetime is aware and is compared as an instant; the engine converts to UTC first because
  Python compares two datetimes sharing one tzinfo by wall clock, which is wrong in a DST fold.
  Finding.start/end are returned in UTC. Naive datetimes, zero-length or inverted slots and negative
  buffers raise ValueError.
- Intervals are half-open, ``[start, end)``: back-to-back appointments never clash.
- ``overlap``: two slots of one therapist whose buffer-padded intervals
  ``[start - buffer_before, end + buffer_after)`` intersect; one finding per pair; the extent is the
  intersection of the unpadded intervals, or of the padded ones if only those intersect.
- ``outside_hours``: a slot not wholly covered by the union of its therapist's weekly working
  intervals (local wall-clock times in the therapist's zone, per local date, so "24:00" on one day and
  "00:00" on the next join up), or intersecting any time off. One finding per slot; therapists
  without a WorkingWeek are skipped. Local times that do not exist or occur twice are read with fold=0.
- ``external_busy``: a slot intersecting an external busy block of its therapist; one per pair
  (empty blocks are ignored).
- ``patient_overlap``: two slots with the same known patient_ref that intersect, whatever the
  therapists; therapist_id is None unless both slots belong to the same therapist.
- ``duplicate``: the same visit from two source systems: same therapist, different source_system,
  start and end each within a tolerance, and no evidence of two different patients (refs equal, one
  unknown, or refs from different namespaces, which cannot be compared); the extent is the
  intersection, or the span of both visits if very short ones do not touch.
- ``detect_all`` runs all five; a pair reported as duplicate is not also reported as overlap or as
  patient_overlap (it is one visit).
- ``working_intervals``: a therapist's working time within ``[start, end)`` less time off, as merged,
  sorted UTC intervals clipped to the range (hours read per local date, as for ``outside_hours``).
- ``free_slots``: bookable ``[s, s + duration)`` slots within ``[start, end)``, in UTC. Candidates are
  ``s = opening + k * step`` from the opening of each whole working interval (less time off, not clipped
  to the range, so hours across midnight stay one interval); one is offered when it lies inside that
  interval and ``[s - buffer_before, s + duration + buffer_after)`` intersects no ``taken`` interval.
  ``taken`` intervals come already padded by the caller. Naive datetimes, an empty range, a non-positive
  duration or step and negative buffers raise ValueError.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

OVERLAP = "overlap"
OUTSIDE_HOURS = "outside_hours"
EXTERNAL_BUSY = "external_busy"
PATIENT_OVERLAP = "patient_overlap"
DUPLICATE = "duplicate"

DAY_NAMES: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Hours = Mapping[int, tuple[tuple[time, time], ...]]


class Slot(NamedTuple):
    """One occupying appointment as the engine sees it (a named tuple: a full scan builds half a million,
    and a tuple is built about four times faster than a frozen dataclass)."""

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
            if not isinstance(value, str):
                raise WorkingHoursError(f'{day}: {value!r}: expected a "HH:MM-HH:MM" string')
            match = _INTERVAL_RE.match(value.strip())
            if match is None:
                raise WorkingHoursError(f'{day}: "{value}": expected "HH:MM-HH:MM" (24-hour clock)')
            start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
            if start is None or end is None:
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


def _format_interval(start: time, end: time) -> str:
    """One interval as "HH:MM-HH:MM", an end of time(0) written as 24:00."""
    return f"{start:%H:%M}-" + ("24:00" if end == time(0) else f"{end:%H:%M}")


def format_working_hours(parsed: Hours) -> dict[str, list[str]]:
    """Inverse of parse_working_hours."""
    return {
        DAY_NAMES[weekday]: [_format_interval(start, end) for start, end in parsed[weekday]]
        for weekday in sorted(parsed)
        if parsed[weekday]
    }


# --- normalisation ------------------------------------------------------------------------------

_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)

# A slot as the detectors use it: (padded start, padded end, start, end, index into the slot list), all
# UTC. Holding only atomic values keeps these tuples out of the cyclic GC, which halves the run time.
_Rec = tuple[datetime, datetime, datetime, datetime, int]


def _utc(value: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the conflict engine needs aware datetimes")
    return value.astimezone(UTC)


def _normalise(slots: Iterable[Slot]) -> tuple[list[Slot], dict[int, list[_Rec]]]:
    """The slots as a list, and their records per therapist sorted by start."""
    slots = list(slots)
    by_therapist: dict[int, list[_Rec]] = defaultdict(list)
    zero = _ZERO
    for index, (slot_id, therapist_id, start, end, before, after, _, _) in enumerate(slots):
        # Most instants arrive in UTC already (the scan reads them so): skip the conversion call then.
        if start.tzinfo is not UTC:
            if start.tzinfo is None:
                raise ValueError(f"slot {slot_id}: naive datetime; the conflict engine needs aware datetimes")
            start = start.astimezone(UTC)
        if end.tzinfo is not UTC:
            if end.tzinfo is None:
                raise ValueError(f"slot {slot_id}: naive datetime; the conflict engine needs aware datetimes")
            end = end.astimezone(UTC)
        if not start < end:
            raise ValueError(f"slot {slot_id}: start must be before end (zero-length or inverted)")
        if before or after:
            if before < zero or after < zero:
                raise ValueError(f"slot {slot_id}: buffers must not be negative")
            by_therapist[therapist_id].append((start - before, end + after, start, end, index))
        else:
            by_therapist[therapist_id].append((start, end, start, end, index))
    for group in by_therapist.values():
        group.sort(key=itemgetter(2))
    return slots, by_therapist


def _pair(a: int, b: int) -> tuple[int, int]:
    """Two ids in ascending order."""
    return (a, b) if a <= b else (b, a)


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Findings of one kind in the deterministic order (appointment ids, block ids)."""
    findings.sort(key=attrgetter("appointment_ids", "busy_block_ids"))
    return findings


def _intersecting_pairs(items: list[_Rec], lo: int, hi: int) -> Iterator[tuple[_Rec, _Rec]]:
    """Pairs whose non-empty [item[lo], item[hi]) intersect, for items sorted by item[lo]."""
    # Sweep line: whatever starts before this item ends, from here on, is exactly the set it clashes
    # with, so the inner loop runs once per pair plus once per item: O(n + k) after the sort.
    count = len(items)
    for i, item in enumerate(items):
        end = item[hi]
        j = i + 1
        while j < count and items[j][lo] < end:
            yield item, items[j]
            j += 1


# --- detectors ----------------------------------------------------------------------------------


def _overlaps(slots: list[Slot], by_therapist: dict[int, list[_Rec]]) -> list[Finding]:
    """Overlap findings from normalised slots."""
    findings: list[Finding] = []
    for therapist_id, group in by_therapist.items():
        for a, b in _intersecting_pairs(sorted(group, key=itemgetter(0)), 0, 1):
            start, end = max(a[2], b[2]), min(a[3], b[3])
            if start >= end:
                start, end = max(a[0], b[0]), min(a[1], b[1])
            ids = _pair(slots[a[4]].id, slots[b[4]].id)
            findings.append(Finding(OVERLAP, ids, (), therapist_id, start, end))
    return _ordered(findings)


def find_overlaps(slots: Iterable[Slot]) -> list[Finding]:
    """Pairs of one therapist's slots whose buffer-padded intervals intersect."""
    return _overlaps(*_normalise(slots))


def _local_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time on a local date."""
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


def _working_time(week: WorkingWeek, days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """The merged working intervals, in UTC, of these local dates."""
    intervals = []
    for day in days:
        for start, end in week.hours.get(day.weekday(), ()):
            end_day = day + _ONE_DAY if end == time(0) else day
            intervals.append((_local_instant(day, start, week.tz), _local_instant(end_day, end, week.tz)))
    return _merge(intervals)


def _outside_hours(
    slots: list[Slot], by_therapist: dict[int, list[_Rec]], weeks: Mapping[int, WorkingWeek]
) -> list[Finding]:
    """Outside-hours findings from normalised slots."""
    findings: list[Finding] = []
    # A local date is within a day of the UTC date, and a day's hours can spill a little past its own date
    # around a transition at midnight (Chile falls back at 24:00): two days either side include every
    # local date whose hours can touch a slot, so the union below is exact. One range for all therapists,
    # so that those sharing a zone and hours (most of a practice) share one computation of working time.
    groups = [g for t, g in by_therapist.items() if t in weeks]
    if not groups:
        return findings
    first = min(g[0][2] for g in groups).date() - 2 * _ONE_DAY
    last = max(record[3] for g in groups for record in g).date() + 2 * _ONE_DAY
    days = [first + n * _ONE_DAY for n in range((last - first).days + 1)]
    shared: dict[tuple[Any, ...], tuple[list[tuple[datetime, datetime]], list[datetime]]] = {}
    for therapist_id, group in by_therapist.items():
        week = weeks.get(therapist_id)
        if week is None:
            continue
        key = (week.tz, tuple(sorted(week.hours.items())))
        if key not in shared:
            working = _working_time(week, days)
            shared[key] = (working, [low for low, _ in working])
        working, working_starts = shared[key]
        off = _merge((_utc(low), _utc(high)) for low, high in week.time_off)
        off_starts = [low for low, _ in off]
        for _, _, start, end, index in group:
            # Both lists are merged and sorted: only the last interval starting at or before `start` can
            # contain it, and only the last time off starting before `end` can reach back to `start`.
            i = bisect_right(working_starts, start) - 1
            inside = i >= 0 and end <= working[i][1]
            if inside and off:
                j = bisect_left(off_starts, end) - 1
                inside = j < 0 or off[j][1] <= start
            if not inside:
                findings.append(Finding(OUTSIDE_HOURS, (slots[index].id,), (), therapist_id, start, end))
    return _ordered(findings)


def find_outside_hours(slots: Iterable[Slot], weeks: Mapping[int, WorkingWeek]) -> list[Finding]:
    """Slots not wholly inside their therapist's working hours, or touching time off."""
    return _outside_hours(*_normalise(slots), weeks)


def _external_busy(
    slots: list[Slot], by_therapist: dict[int, list[_Rec]], blocks: Iterable[Block]
) -> list[Finding]:
    """External-busy findings from normalised slots."""
    busy_by_therapist: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for block in blocks:
        start, end = _utc(block.start), _utc(block.end)
        if start < end:  # an empty block occupies no time
            busy_by_therapist[block.therapist_id].append((start, end, block.id))
    findings: list[Finding] = []
    for therapist_id, busy in busy_by_therapist.items():
        group = by_therapist.get(therapist_id, [])
        busy.sort()
        busy_starts = [b[0] for b in busy]
        slot_starts = [r[2] for r in group]
        # Both lists are sorted by start; a clashing pair is found from whichever side starts later
        # (from the slot on a tie), as the other side's start lying inside its interval.
        for _, _, start, end, index in group:
            j = bisect_left(busy_starts, start)
            while j < len(busy) and busy[j][0] < end:
                b_start, b_end, block_id = busy[j]
                findings.append(
                    Finding(
                        EXTERNAL_BUSY, (slots[index].id,), (block_id,), therapist_id, b_start, min(end, b_end)
                    )
                )
                j += 1
        for b_start, b_end, block_id in busy:
            j = bisect_right(slot_starts, b_start)
            while j < len(group) and group[j][2] < b_end:
                _, _, start, end, index = group[j]
                findings.append(
                    Finding(
                        EXTERNAL_BUSY, (slots[index].id,), (block_id,), therapist_id, start, min(end, b_end)
                    )
                )
                j += 1
    return _ordered(findings)


def find_external_busy(slots: Iterable[Slot], blocks: Iterable[Block]) -> list[Finding]:
    """(slot, block) pairs of one therapist whose unpadded intervals intersect."""
    return _external_busy(*_normalise(slots), blocks)


def _patient_overlaps(slots: list[Slot], by_therapist: dict[int, list[_Rec]]) -> list[Finding]:
    """Patient-overlap findings from normalised slots."""
    by_patient: dict[str, list[_Rec]] = defaultdict(list)
    refs = [slot[6] for slot in slots]  # patient_ref by index
    for group in by_therapist.values():
        for record in group:
            patient_ref = refs[record[4]]
            if patient_ref:
                by_patient[patient_ref].append(record)
    findings: list[Finding] = []
    start_of = itemgetter(2)
    for group in by_patient.values():
        count = len(group)
        if count < 2:
            continue
        group.sort(key=start_of)
        # The sweep of _intersecting_pairs, inlined: most patients have a handful of appointments, and a
        # generator per patient costs more than their comparisons.
        for i in range(count - 1):
            a = group[i]
            end = a[3]
            j = i + 1
            while j < count and group[j][2] < end:
                b = group[j]
                slot_a, slot_b = slots[a[4]], slots[b[4]]
                same = slot_a.therapist_id == slot_b.therapist_id
                ids = _pair(slot_a.id, slot_b.id)
                therapist_id = slot_a.therapist_id if same else None
                findings.append(Finding(PATIENT_OVERLAP, ids, (), therapist_id, b[2], min(end, b[3])))
                j += 1
    return _ordered(findings)


def find_patient_overlaps(slots: Iterable[Slot]) -> list[Finding]:
    """Pairs of slots for the same known patient that intersect, whatever the therapists."""
    return _patient_overlaps(*_normalise(slots))


def _ref_namespace(ref: str) -> str:
    """Sources pseudonymise patients in their own namespace ("zocdoc:pt-7"); hub refs have none."""
    return ref.split(":", 1)[0] if ":" in ref else ""


def _same_visit(a: Slot, b: Slot) -> bool:
    """Whether two near-identical slots can be one visit booked in two systems.

    Different known patients rule it out, but only when both refs are in one namespace: a Zocdoc and a
    Kareo pseudonym for the same person differ, so comparing them would hide every real duplicate.
    """
    if a.source_system == b.source_system:
        return False
    if not a.patient_ref or not b.patient_ref:
        return True
    return a.patient_ref == b.patient_ref or _ref_namespace(a.patient_ref) != _ref_namespace(b.patient_ref)


def _duplicates(
    slots: list[Slot], by_therapist: dict[int, list[_Rec]], tolerance: timedelta
) -> list[Finding]:
    """Duplicate findings from normalised slots."""
    if tolerance < _ZERO:
        raise ValueError(f"duplicate tolerance must not be negative, got {tolerance}")
    findings: list[Finding] = []
    for therapist_id, group in by_therapist.items():
        count = len(group)
        for i, (_, _, start, end, index) in enumerate(group):
            latest = start + tolerance
            j = i + 1
            while j < count and group[j][2] <= latest:
                _, _, other_start, other_end, other = group[j]
                if abs(other_end - end) <= tolerance and _same_visit(slots[index], slots[other]):
                    clash_start, clash_end = other_start, min(end, other_end)
                    if clash_start >= clash_end:  # very short visits can be near without touching
                        clash_start, clash_end = start, max(end, other_end)
                    ids = _pair(slots[index].id, slots[other].id)
                    findings.append(Finding(DUPLICATE, ids, (), therapist_id, clash_start, clash_end))
                j += 1
    return _ordered(findings)


def find_duplicates(slots: Iterable[Slot], tolerance: timedelta = timedelta(minutes=5)) -> list[Finding]:
    """Pairs of one therapist's slots from different sources that look like the same visit."""
    return _duplicates(*_normalise(slots), tolerance)


def detect_all(
    slots: Iterable[Slot],
    blocks: Iterable[Block],
    weeks: Mapping[int, WorkingWeek],
    *,
    duplicate_tolerance: timedelta = timedelta(minutes=5),
) -> list[Finding]:
    """All five kinds of finding, in the order (kind, appointment ids, block ids)."""
    normalised = _normalise(slots)
    duplicates = _duplicates(*normalised, duplicate_tolerance)
    duplicate_pairs = {finding.appointment_ids for finding in duplicates}
    by_kind = {
        DUPLICATE: duplicates,
        EXTERNAL_BUSY: _external_busy(*normalised, blocks),
        OUTSIDE_HOURS: _outside_hours(*normalised, weeks),
        OVERLAP: [f for f in _overlaps(*normalised) if f.appointment_ids not in duplicate_pairs],
        PATIENT_OVERLAP: [
            f for f in _patient_overlaps(*normalised) if f.appointment_ids not in duplicate_pairs
        ],
    }
    # Each list is already in (appointment ids, block ids) order, so ordering by kind completes it.
    return [finding for kind in sorted(by_kind) for finding in by_kind[kind]]


# --- free time ----------------------------------------------------------------------------------


def _utc_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A query range in UTC; naive datetimes and empty or inverted ranges are refused."""
    start, end = _utc(start), _utc(end)
    if not start < end:
        raise ValueError(f"start must be before end, got {start.isoformat()} and {end.isoformat()}")
    return start, end


def _subtract(
    intervals: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """Merged, sorted intervals less merged, sorted holes."""
    remaining: list[tuple[datetime, datetime]] = []
    i = 0
    for start, end in intervals:
        while i < len(holes) and holes[i][1] <= start:
            i += 1
        j = i
        while j < len(holes) and holes[j][0] < end:
            if holes[j][0] > start:
                remaining.append((start, holes[j][0]))
            start = max(start, holes[j][1])
            j += 1
        if start < end:
            remaining.append((start, end))
    return remaining


def _available(week: WorkingWeek, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The whole (unclipped) working intervals less time off that intersect UTC [start, end)."""
    # Two local dates either side of the UTC dates cover every date whose hours can reach the range, as in
    # _outside_hours.
    first, last = start.date() - 2 * _ONE_DAY, end.date() + 2 * _ONE_DAY
    working = _working_time(week, (first + n * _ONE_DAY for n in range((last - first).days + 1)))
    # Slots are aligned to where an interval really opens, so one opening at the first date's midnight
    # may need earlier dates. After seven such dates the hours are round the clock and never open: that
    # midnight is then the anchor.
    for _ in range(7):
        if not working or working[0][1] <= start or working[0][0] != _local_instant(first, time(0), week.tz):
            break
        first -= _ONE_DAY
        working = _merge([*_working_time(week, (first,)), *working])
    off = _merge((_utc(low), _utc(high)) for low, high in week.time_off)
    return [(low, high) for low, high in _subtract(working, off) if low < end and start < high]


def working_intervals(week: WorkingWeek, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The working time within [start, end) less time off, as merged, sorted UTC intervals."""
    start, end = _utc_range(start, end)
    return [(max(low, start), min(high, end)) for low, high in _available(week, start, end)]


def free_slots(
    *,
    week: WorkingWeek,
    start: datetime,
    end: datetime,
    duration: timedelta,
    buffer_before: timedelta = timedelta(0),
    buffer_after: timedelta = timedelta(0),
    taken: Iterable[tuple[datetime, datetime]] = (),
    step: timedelta = timedelta(minutes=15),
) -> list[tuple[datetime, datetime]]:
    """Bookable slots within [start, end), every `step` from the opening of each working interval."""
    start, end = _utc_range(start, end)
    if duration <= _ZERO:
        raise ValueError(f"duration must be positive, got {duration}")
    if step <= _ZERO:
        raise ValueError(f"step must be positive, got {step}")
    if buffer_before < _ZERO or buffer_after < _ZERO:
        raise ValueError(f"buffers must not be negative, got {buffer_before} and {buffer_after}")
    busy = _merge((_utc(low), _utc(high)) for low, high in taken)
    busy_starts = [low for low, _ in busy]
    slots: list[tuple[datetime, datetime]] = []
    j = 0
    for low, high in _available(week, start, end):
        latest = min(high, end) - duration
        # The first step from `low` at or after `start` (ceiling division).
        candidate = low if low >= start else low - ((low - start) // step) * step
        while candidate <= latest:
            padded_start, padded_end = candidate - buffer_before, candidate + duration + buffer_after
            # busy is merged, so of the intervals starting before padded_end the last one ends latest.
            j = bisect_left(busy_starts, padded_end, j)
            if j and busy[j - 1][1] > padded_start:
                # Every step whose padded start is before that interval's end clashes with it too.
                candidate -= ((candidate - busy[j - 1][1] - buffer_before) // step) * step
                continue
            slots.append((candidate, candidate + duration))
            candidate += step
    return slots
