from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conflicts.engine import (
    Block,
    Finding,
    Slot,
    WorkingHoursError,
    WorkingWeek,
    detect_all,
    find_duplicates,
    find_external_busy,
    find_outside_hours,
    find_overlaps,
    find_patient_overlaps,
    format_working_hours,
    parse_working_hours,
)

MONDAY = date(2026, 5, 4)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OFFICE = parse_working_hours({day: ["09:00-12:00", "13:00-17:00"] for day in WEEKDAYS})
EVERY_DAY_9_TO_5 = {weekday: ((time(9), time(17)),) for weekday in range(7)}


def minutes(count: int) -> timedelta:
    """A duration in minutes."""
    return timedelta(minutes=count)


def at(clock: str, day: int = 0, tz: tzinfo = UTC) -> datetime:
    """Wall-clock "HH:MM" on the test Monday plus `day` days, in `tz`."""
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=tz)


def slot(slot_id: int, start: str, end: str, *, therapist_id: int = 1, day: int = 0, **fields: Any) -> Slot:
    """A slot on the test Monday (UTC) plus `day` days."""
    return Slot(slot_id, therapist_id, at(start, day), at(end, day), **fields)


def week(
    hours: Mapping[int, tuple[tuple[time, time], ...]] = OFFICE, tz: str = "UTC", **fields: Any
) -> WorkingWeek:
    """Working rules for one therapist."""
    return WorkingWeek(ZoneInfo(tz), hours, **fields)


def keys(findings: Iterable[Finding]) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """The identifying part of each finding."""
    return [(f.kind, f.appointment_ids, f.busy_block_ids) for f in findings]


# --- overlaps -----------------------------------------------------------------------------------


def test_partially_overlapping_appointments_overlap() -> None:
    [finding] = find_overlaps([slot(1, "09:00", "10:00"), slot(2, "09:30", "10:30")])
    assert finding == Finding("overlap", (1, 2), (), 1, at("09:30"), at("10:00"))


def test_an_appointment_inside_another_overlaps_over_the_inner_one() -> None:
    [finding] = find_overlaps([slot(1, "09:00", "12:00"), slot(2, "10:00", "11:00")])
    assert (finding.appointment_ids, finding.start, finding.end) == ((1, 2), at("10:00"), at("11:00"))


def test_identical_appointments_overlap() -> None:
    [finding] = find_overlaps([slot(1, "09:00", "10:00"), slot(2, "09:00", "10:00")])
    assert (finding.appointment_ids, finding.start, finding.end) == ((1, 2), at("09:00"), at("10:00"))


def test_back_to_back_appointments_are_not_an_overlap() -> None:
    assert find_overlaps([slot(1, "09:00", "10:00"), slot(2, "10:00", "11:00")]) == []


def test_buffers_turn_a_near_miss_into_an_overlap_over_the_padded_times() -> None:
    first = slot(1, "09:00", "10:00", buffer_after=minutes(15))
    second = slot(2, "10:10", "11:00")
    [finding] = find_overlaps([first, second])
    assert (finding.appointment_ids, finding.start, finding.end) == ((1, 2), at("10:10"), at("10:15"))


def test_back_to_back_appointments_whose_buffers_just_touch_are_not_an_overlap() -> None:
    first = slot(1, "09:00", "10:00", buffer_after=minutes(10))
    second = slot(2, "10:20", "11:00", buffer_before=minutes(10))
    assert find_overlaps([first, second]) == []


def test_appointments_of_different_therapists_never_overlap() -> None:
    slots = [slot(1, "09:00", "10:00", therapist_id=1), slot(2, "09:00", "10:00", therapist_id=2)]
    assert find_overlaps(slots) == []


def test_three_mutually_overlapping_appointments_give_three_pairs() -> None:
    slots = [slot(3, "09:20", "10:20"), slot(1, "09:00", "10:00"), slot(2, "09:10", "10:10")]
    assert keys(find_overlaps(slots)) == [
        ("overlap", (1, 2), ()),
        ("overlap", (1, 3), ()),
        ("overlap", (2, 3), ()),
    ]


def test_a_long_appointment_overlaps_every_short_one_it_spans() -> None:
    # The classic bug checks whether one slot's start lies in the other: the long slot starts before
    # and ends after each short one, so only an interval-against-interval test finds these.
    short = [slot(i, f"{hour:02d}:00", f"{hour:02d}:30") for i, hour in enumerate(range(9, 17), start=2)]
    long = slot(1, "08:00", "18:00")
    earlier = slot(20, "07:30", "08:30")
    findings = find_overlaps([*short, long, earlier])
    assert keys(findings) == [("overlap", (1, i), ()) for i in [*range(2, 10), 20]]


def test_appointments_in_different_zones_are_compared_as_instants() -> None:
    berlin = Slot(1, 1, at("09:00", tz=ZoneInfo("Europe/Berlin")), at("10:00", tz=ZoneInfo("Europe/Berlin")))
    utc = slot(2, "07:30", "08:30")  # 09:30-10:30 in Berlin (summer time)
    [finding] = find_overlaps([berlin, utc])
    assert (finding.start, finding.end) == (at("07:30"), at("08:00"))
    assert finding.start is not None and finding.start.tzinfo is UTC


def test_appointments_in_the_repeated_fall_back_hour_are_compared_as_instants() -> None:
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 0, tzinfo=new_york)  # 01:00 EDT, 05:00 UTC
    repeat = datetime(2026, 11, 1, 1, 15, tzinfo=new_york, fold=1)  # 01:15 EST, 06:15 UTC
    slots = [
        Slot(1, 1, first, first.replace(minute=45)),
        Slot(2, 1, repeat, repeat.replace(minute=45)),  # same wall clock, an hour later in fact
        Slot(3, 1, first.replace(minute=30), first.replace(minute=40)),
    ]
    assert keys(find_overlaps(slots)) == [("overlap", (1, 3), ())]


def test_buffers_are_real_durations_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    before = datetime(2026, 3, 29, 1, 0, tzinfo=berlin), datetime(2026, 3, 29, 1, 55, tzinfo=berlin)  # CET
    after = datetime(2026, 3, 29, 3, 5, tzinfo=berlin), datetime(2026, 3, 29, 4, 0, tzinfo=berlin)  # CEST
    # 01:55 CET to 03:05 CEST is ten real minutes, though seventy on the wall clock.
    assert find_overlaps([Slot(1, 1, *before, buffer_after=minutes(10)), Slot(2, 1, *after)]) == []
    [finding] = find_overlaps([Slot(1, 1, *before, buffer_after=minutes(15)), Slot(2, 1, *after)])
    assert (finding.start, finding.end) == (
        datetime(2026, 3, 29, 1, 5, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 10, tzinfo=UTC),
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        find_overlaps([Slot(1, 1, datetime(2026, 5, 4, 9), datetime(2026, 5, 4, 10))])


def test_negative_buffers_are_refused() -> None:
    with pytest.raises(ValueError, match="buffers"):
        find_overlaps([slot(1, "09:00", "10:00", buffer_before=minutes(-5))])


# --- outside hours ------------------------------------------------------------------------------


def test_an_appointment_within_hours_is_not_a_finding() -> None:
    slots = [slot(1, "09:00", "10:00"), slot(2, "16:00", "17:00"), slot(3, "13:00", "17:00", day=4)]
    assert find_outside_hours(slots, {1: week()}) == []


def test_an_appointment_starting_before_opening_is_outside_hours() -> None:
    [finding] = find_outside_hours([slot(1, "08:30", "09:30")], {1: week()})
    assert finding == Finding("outside_hours", (1,), (), 1, at("08:30"), at("09:30"))


def test_an_appointment_over_the_lunch_break_is_outside_hours() -> None:
    assert keys(find_outside_hours([slot(1, "11:30", "13:30")], {1: week()})) == [("outside_hours", (1,), ())]


def test_an_appointment_on_a_day_without_hours_is_outside_hours() -> None:
    assert len(find_outside_hours([slot(1, "10:00", "11:00", day=5)], {1: week()})) == 1


def test_an_appointment_during_time_off_is_outside_hours() -> None:
    rules = week(time_off=((at("00:00", day=1), at("00:00", day=2)),))
    findings = find_outside_hours([slot(1, "10:00", "11:00"), slot(2, "10:00", "11:00", day=1)], {1: rules})
    assert keys(findings) == [("outside_hours", (2,), ())]


def test_zero_length_and_inverted_slots_are_refused() -> None:
    with pytest.raises(ValueError, match="start must be before end"):
        find_overlaps([slot(1, "09:00", "09:00")])
    with pytest.raises(ValueError, match="start must be before end"):
        detect_all([slot(1, "10:00", "09:00")], [], {})


def test_all_day_time_off_on_a_25_hour_day_covers_the_whole_local_day() -> None:
    ny = ZoneInfo("America/New_York")
    fall_back = date(2026, 11, 1)  # a Sunday; clocks go back at 02:00
    off_start = datetime.combine(fall_back, time(0), tzinfo=ny)
    off_end = datetime.combine(fall_back + timedelta(days=1), time(0), tzinfo=ny)
    assert off_end.astimezone(UTC) - off_start.astimezone(UTC) == timedelta(hours=25)
    rules = {
        1: WorkingWeek(ny, {6: ((time(0), time(0)),), 0: ((time(0), time(0)),)}, ((off_start, off_end),))
    }
    late = Slot(
        1,
        1,
        datetime.combine(fall_back, time(22), tzinfo=ny),
        datetime.combine(fall_back, time(23), tzinfo=ny),
    )
    next_day = Slot(2, 1, off_end, off_end + timedelta(hours=1))
    assert keys(find_outside_hours([late, next_day], rules)) == [("outside_hours", (1,), ())]


def test_an_appointment_touching_time_off_is_inside_hours() -> None:
    rules = week(time_off=((at("11:00"), at("12:00")), (at("14:00"), at("15:00"))))
    slots = [slot(1, "10:00", "11:00"), slot(2, "13:00", "14:00"), slot(3, "15:00", "16:00")]
    assert find_outside_hours(slots, {1: rules}) == []


def test_an_appointment_across_midnight_is_inside_when_both_days_cover_it() -> None:
    hours = parse_working_hours({"monday": ["18:00-24:00"], "tuesday": ["00:00-02:00"]})
    late = Slot(1, 1, at("23:00"), at("01:00", day=1))
    assert find_outside_hours([late], {1: week(hours)}) == []


def test_an_appointment_across_midnight_is_outside_when_the_next_day_does_not_continue() -> None:
    hours = parse_working_hours({"monday": ["18:00-24:00"], "tuesday": ["00:30-02:00"]})
    late = Slot(1, 1, at("23:00"), at("01:00", day=1))
    assert len(find_outside_hours([late], {1: week(hours)})) == 1


def test_therapists_without_working_rules_are_skipped() -> None:
    assert find_outside_hours([slot(1, "03:00", "04:00", therapist_id=7)], {1: week()}) == []


def test_working_hours_are_read_in_the_therapists_zone() -> None:
    berlin = week(tz="Europe/Berlin")  # 09:00-12:00 in Berlin is 07:00-10:00 UTC in May
    slots = [slot(1, "07:00", "08:00"), slot(2, "10:00", "11:00")]
    assert keys(find_outside_hours(slots, {1: berlin})) == [("outside_hours", (2,), ())]


DST_CHANGES = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
    ("America/Phoenix", date(2026, 3, 8)),
    ("America/Phoenix", date(2026, 11, 1)),
]


@pytest.mark.parametrize(("zone", "change"), DST_CHANGES)
def test_the_dst_cases_are_really_transition_days_except_in_phoenix(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    midnight, noon = datetime.combine(change, time(0), tz), datetime.combine(change, time(12), tz)
    assert (midnight.utcoffset() != noon.utcoffset()) == (zone != "America/Phoenix")


@pytest.mark.parametrize(("zone", "change"), DST_CHANGES)
@pytest.mark.parametrize("days_after", [0, 1])
def test_local_office_hours_hold_on_and_after_a_dst_change(zone: str, change: date, days_after: int) -> None:
    tz = ZoneInfo(zone)
    day = change + timedelta(days=days_after)
    nine = Slot(1, 1, datetime.combine(day, time(9), tz), datetime.combine(day, time(10), tz))
    eight = Slot(2, 1, datetime.combine(day, time(8), tz), datetime.combine(day, time(9), tz))
    late = Slot(
        3, 1, datetime.combine(day, time(16), tz).astimezone(UTC), datetime.combine(day, time(17), tz)
    )
    findings = find_outside_hours([nine, eight, late], {1: week(EVERY_DAY_9_TO_5, zone)})
    assert keys(findings) == [("outside_hours", (2,), ())]


@pytest.mark.parametrize(
    ("zone", "change", "local_hour"),
    [
        ("America/New_York", date(2026, 3, 8), 10),
        ("America/New_York", date(2026, 11, 1), 8),
        ("Europe/Berlin", date(2026, 3, 29), 10),
        ("Europe/Berlin", date(2026, 10, 25), 8),
        ("Australia/Sydney", date(2026, 4, 5), 8),
        ("Australia/Sydney", date(2026, 10, 4), 10),
        ("America/Phoenix", date(2026, 3, 8), 9),
    ],
)
def test_the_same_utc_time_is_judged_by_its_local_time_after_a_change(
    zone: str, change: date, local_hour: int
) -> None:
    tz = ZoneInfo(zone)
    week_before = datetime.combine(change - timedelta(days=7), time(9), tz).astimezone(UTC)
    same_utc_time = week_before + timedelta(days=7)
    assert same_utc_time.astimezone(tz).hour == local_hour
    slots = [
        Slot(1, 1, week_before, week_before + timedelta(hours=1)),
        Slot(2, 1, same_utc_time, same_utc_time + timedelta(hours=1)),
    ]
    findings = find_outside_hours(slots, {1: week(EVERY_DAY_9_TO_5, zone)})
    assert keys(findings) == ([("outside_hours", (2,), ())] if local_hour < 9 else [])


@pytest.mark.parametrize("change", [date(2026, 3, 8), date(2026, 11, 1)])
def test_a_whole_local_day_of_23_or_25_hours_is_inside_all_day_hours(change: date) -> None:
    tz = ZoneInfo("America/New_York")
    all_day = {weekday: ((time(0), time(0)),) for weekday in range(7)}
    whole = Slot(
        1, 1, datetime.combine(change, time(0), tz), datetime.combine(change + timedelta(days=1), time(0), tz)
    )
    assert whole.end.astimezone(UTC) - whole.start.astimezone(UTC) in (
        timedelta(hours=23),
        timedelta(hours=25),
    )
    assert find_outside_hours([whole], {1: week(all_day, "America/New_York")}) == []


def test_working_hours_ending_in_the_spring_forward_gap_use_the_offset_before_the_change() -> None:
    # 02:30 does not exist on 8 March 2026 in New York; read with fold=0 it is 03:30 EDT.
    tz = ZoneInfo("America/New_York")
    hours = parse_working_hours({"sunday": ["00:00-02:30"]})
    change = date(2026, 3, 8)
    inside = Slot(1, 1, datetime.combine(change, time(3), tz), datetime.combine(change, time(3, 30), tz))
    beyond = Slot(2, 1, datetime.combine(change, time(3), tz), datetime.combine(change, time(3, 31), tz))
    assert keys(find_outside_hours([inside, beyond], {1: week(hours, "America/New_York")})) == [
        ("outside_hours", (2,), ())
    ]


# --- external busy ------------------------------------------------------------------------------


def test_an_appointment_intersecting_a_busy_block_is_external_busy() -> None:
    [finding] = find_external_busy([slot(1, "09:00", "10:00")], [Block(7, 1, at("09:30"), at("11:00"))])
    assert finding == Finding("external_busy", (1,), (7,), 1, at("09:30"), at("10:00"))


def test_an_appointment_touching_a_busy_block_is_not_external_busy() -> None:
    blocks = [Block(7, 1, at("08:00"), at("09:00")), Block(8, 1, at("10:00"), at("11:00"))]
    assert find_external_busy([slot(1, "09:00", "10:00")], blocks) == []


def test_a_busy_block_of_another_therapist_is_ignored() -> None:
    assert find_external_busy([slot(1, "09:00", "10:00")], [Block(7, 2, at("09:00"), at("10:00"))]) == []


def test_external_busy_is_reported_once_per_appointment_and_block_pair() -> None:
    slots = [slot(1, "09:00", "12:00"), slot(2, "13:00", "14:00"), slot(3, "13:30", "15:00")]
    blocks = [
        Block(7, 1, at("08:00"), at("09:30")),
        Block(8, 1, at("11:00"), at("11:15")),
        Block(9, 1, at("13:15"), at("13:45")),
    ]
    assert keys(find_external_busy(slots, blocks)) == [
        ("external_busy", (1,), (7,)),
        ("external_busy", (1,), (8,)),
        ("external_busy", (2,), (9,)),
        ("external_busy", (3,), (9,)),
    ]


def test_empty_busy_blocks_are_ignored() -> None:
    assert find_external_busy([slot(1, "09:00", "10:00")], [Block(7, 1, at("09:30"), at("09:30"))]) == []


# --- patient overlaps ---------------------------------------------------------------------------


def test_one_patient_booked_with_two_therapists_at_once_is_a_patient_overlap() -> None:
    slots = [
        slot(1, "09:00", "10:00", patient_ref="P1"),
        slot(2, "09:45", "10:30", therapist_id=2, patient_ref="P1"),
    ]
    [finding] = find_patient_overlaps(slots)
    assert finding == Finding("patient_overlap", (1, 2), (), None, at("09:45"), at("10:00"))


def test_one_patient_double_booked_with_one_therapist_is_also_a_patient_overlap() -> None:
    slots = [slot(1, "09:00", "10:00", patient_ref="P1"), slot(2, "09:30", "10:30", patient_ref="P1")]
    assert [(f.kind, f.therapist_id) for f in find_patient_overlaps(slots)] == [("patient_overlap", 1)]
    assert len(find_overlaps(slots)) == 1


def test_unknown_or_different_patients_are_never_a_patient_overlap() -> None:
    slots = [
        slot(1, "09:00", "10:00"),
        slot(2, "09:00", "10:00", therapist_id=2),
        slot(3, "09:00", "10:00", therapist_id=3, patient_ref="P1"),
        slot(4, "09:00", "10:00", therapist_id=4, patient_ref="P2"),
        slot(5, "10:00", "11:00", therapist_id=5, patient_ref="P1"),
    ]
    assert find_patient_overlaps(slots) == []


# --- duplicates ---------------------------------------------------------------------------------


def test_one_visit_from_two_sources_within_tolerance_is_a_duplicate() -> None:
    slots = [slot(1, "09:00", "10:00", source_system="hub"), slot(2, "09:03", "09:56", source_system="gcal")]
    [finding] = find_duplicates(slots)
    assert finding == Finding("duplicate", (1, 2), (), 1, at("09:03"), at("09:56"))


def test_differences_up_to_the_tolerance_are_a_duplicate_and_beyond_it_are_not() -> None:
    hub = slot(1, "09:00", "10:00")
    assert len(find_duplicates([hub, slot(2, "09:05", "10:05", source_system="gcal")])) == 1
    assert find_duplicates([hub, slot(2, "09:06", "10:00", source_system="gcal")]) == []
    assert find_duplicates([hub, slot(2, "09:00", "09:54", source_system="gcal")]) == []
    assert len(find_duplicates([hub, slot(2, "09:10", "10:10", source_system="gcal")], minutes(10))) == 1


def test_short_duplicates_that_do_not_touch_extend_over_both_visits() -> None:
    [finding] = find_duplicates([slot(1, "09:00", "09:03"), slot(2, "09:04", "09:07", source_system="gcal")])
    assert (finding.start, finding.end) == (at("09:00"), at("09:07"))


def test_the_same_source_twice_is_not_a_duplicate() -> None:
    assert find_duplicates([slot(1, "09:00", "10:00"), slot(2, "09:00", "10:00")]) == []


def test_conflicting_known_patients_are_not_a_duplicate() -> None:
    slots = [
        slot(1, "09:00", "10:00", patient_ref="P1"),
        slot(2, "09:00", "10:00", patient_ref="P2", source_system="gcal"),
    ]
    assert find_duplicates(slots) == []


def test_patient_refs_from_different_sources_cannot_rule_a_duplicate_out() -> None:
    slots = [
        slot(1, "09:00", "10:00", patient_ref="zocdoc:pt-1", source_system="zocdoc"),
        slot(2, "09:00", "10:00", patient_ref="kareo:88", source_system="kareo"),
    ]
    assert keys(find_duplicates(slots)) == [("duplicate", (1, 2), ())]
    slots[1] = slot(2, "09:00", "10:00", patient_ref="zocdoc:pt-2", source_system="kareo")
    assert find_duplicates(slots) == []


def test_an_unknown_patient_on_one_side_is_still_a_duplicate() -> None:
    slots = [slot(1, "09:00", "10:00", patient_ref="P1"), slot(2, "09:00", "10:00", source_system="gcal")]
    assert keys(find_duplicates(slots)) == [("duplicate", (1, 2), ())]


def test_duplicates_need_the_same_therapist() -> None:
    slots = [slot(1, "09:00", "10:00"), slot(2, "09:00", "10:00", therapist_id=2, source_system="gcal")]
    assert find_duplicates(slots) == []


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        find_duplicates([], minutes(-1))


# --- detect_all ---------------------------------------------------------------------------------


def test_detect_all_reports_a_duplicate_pair_as_a_duplicate_and_not_as_an_overlap() -> None:
    slots = [
        slot(1, "09:00", "10:00"),
        slot(2, "09:02", "10:00", source_system="gcal"),
        slot(3, "09:30", "09:45"),
    ]
    assert keys(detect_all(slots, [], {})) == [
        ("duplicate", (1, 2), ()),
        ("overlap", (1, 3), ()),
        ("overlap", (2, 3), ()),
    ]


def test_detect_all_reports_one_visit_with_a_known_patient_only_as_a_duplicate() -> None:
    slots = [
        slot(1, "09:00", "10:00", patient_ref="P1"),
        slot(2, "09:00", "10:00", patient_ref="P1", source_system="gcal"),
    ]
    assert keys(detect_all(slots, [], {})) == [("duplicate", (1, 2), ())]


def mixed_schedule() -> tuple[list[Slot], list[Block], dict[int, WorkingWeek]]:
    """A small schedule with one finding of every kind, and more."""
    slots = [
        slot(1, "09:00", "10:00", patient_ref="P1"),
        slot(2, "09:30", "10:30"),
        slot(3, "07:00", "08:00"),
        slot(4, "14:00", "15:00"),
        slot(5, "14:02", "15:01", source_system="gcal"),
        slot(6, "09:15", "09:45", therapist_id=2, patient_ref="P1"),
    ]
    blocks = [Block(20, 1, at("14:30"), at("16:00")), Block(21, 2, at("09:00"), at("09:20"))]
    return slots, blocks, {1: week(), 2: week()}


def test_detect_all_finds_every_kind_in_order_of_kind_then_ids() -> None:
    slots, blocks, weeks = mixed_schedule()
    assert keys(detect_all(slots, blocks, weeks)) == [
        ("duplicate", (4, 5), ()),
        ("external_busy", (4,), (20,)),
        ("external_busy", (5,), (20,)),
        ("external_busy", (6,), (21,)),
        ("outside_hours", (3,), ()),
        ("overlap", (1, 2), ()),
        ("patient_overlap", (1, 6), ()),
    ]


def test_detect_all_reads_each_iterable_only_once() -> None:
    slots, blocks, weeks = mixed_schedule()
    assert detect_all(iter(slots), iter(blocks), weeks) == detect_all(slots, blocks, weeks)


def test_findings_and_fingerprints_do_not_depend_on_input_order() -> None:
    slots, blocks, weeks = mixed_schedule()
    expected = detect_all(slots, blocks, weeks)
    for seed in range(5):
        random.Random(seed).shuffle(slots)
        random.Random(seed).shuffle(blocks)
        assert detect_all(slots, blocks, weeks) == expected
    assert [f.fingerprint for f in expected] == [
        "duplicate:a4,5:b",
        "external_busy:a4:b20",
        "external_busy:a5:b20",
        "external_busy:a6:b21",
        "outside_hours:a3:b",
        "overlap:a1,2:b",
        "patient_overlap:a1,6:b",
    ]


def test_a_fingerprint_ignores_the_order_ids_were_given_in() -> None:
    assert (
        Finding("overlap", (9, 3)).fingerprint == Finding("overlap", (3, 9)).fingerprint == "overlap:a3,9:b"
    )
    assert Finding("external_busy", (4,), (12, 2)).fingerprint == "external_busy:a4:b2,12"


# --- working hours ------------------------------------------------------------------------------


def test_parse_working_hours_reads_the_documented_example() -> None:
    parsed = parse_working_hours({"monday": ["09:00-12:00", "13:00-17:00"], "friday": ["09:00-13:00"]})
    assert parsed == {0: ((time(9), time(12)), (time(13), time(17))), 4: ((time(9), time(13)),)}


def test_parse_working_hours_sorts_intervals_and_accepts_touching_ones_and_24_00() -> None:
    parsed = parse_working_hours({"sunday": ["18:00-24:00", "00:00-02:00", "02:00-03:30"]})
    assert parsed == {6: ((time(0), time(2)), (time(2), time(3, 30)), (time(18), time(0)))}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"funday": ["09:00-12:00"]}, "'funday': unknown day"),
        ({"Monday": ["09:00-12:00"]}, "'Monday': unknown day"),
        ({"monday": ["9-17"]}, 'monday: "9-17": expected "HH:MM-HH:MM"'),
        ({"monday": ["09:00 to 17:00"]}, 'monday: "09:00 to 17:00": expected'),
        ({"wednesday": ["25:00-26:00"]}, 'wednesday: "25:00-26:00": not a valid time of day'),
        ({"wednesday": ["09:60-10:00"]}, 'wednesday: "09:60-10:00": not a valid time of day'),
        ({"tuesday": ["13:00-12:00"]}, 'tuesday: "13:00-12:00": start must be before end'),
        ({"tuesday": ["09:00-09:00"]}, 'tuesday: "09:00-09:00": start must be before end'),
        ({"tuesday": ["24:00-24:00"]}, 'tuesday: "24:00-24:00": start must be before end'),
        ({"thursday": ["09:00-12:00", "11:00-13:00"]}, 'thursday: "09:00-12:00" and "11:00-13:00" overlap'),
        ({"friday": "09:00-12:00"}, "friday: expected a list"),
        ({"friday": [900]}, "friday: 900: expected"),
    ],
)
def test_parse_working_hours_rejects_bad_input_naming_the_day_and_value(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(WorkingHoursError, match=re.escape(message)):
        parse_working_hours(data)


def test_format_working_hours_round_trips() -> None:
    data = {"monday": ["09:00-12:00", "13:00-17:00"], "saturday": ["00:00-02:00", "18:30-24:00"]}
    assert format_working_hours(parse_working_hours(data)) == data
    assert parse_working_hours(format_working_hours(OFFICE)) == OFFICE


# --- randomized cross-checks against naive references -------------------------------------------

ZONES: tuple[tzinfo, ...] = (
    UTC,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    timezone(timedelta(hours=-3)),
)
ORIGIN = datetime(2026, 3, 27, tzinfo=UTC)  # the window holds Berlin's change to summer time


def grid_time(rng: random.Random, days: int = 4) -> datetime:
    """A random UTC instant on a 5-minute grid in the test window."""
    return ORIGIN + minutes(5 * rng.randrange(days * 24 * 12))


def random_slots(rng: random.Random, count: int) -> list[Slot]:
    """Random slots in random zones, with near-copies from another source mixed in."""
    slots: list[Slot] = []
    for slot_id in rng.sample(range(1, 10 * count), count):
        if slots and rng.random() < 0.2:
            base = rng.choice(slots)
            start = base.start.astimezone(UTC) + minutes(rng.randrange(-6, 7))
            end = base.end.astimezone(UTC) + minutes(rng.randrange(-6, 7))
            if start >= end:
                end = start + minutes(5)
            therapist_id = base.therapist_id
        else:
            start = grid_time(rng)
            end, therapist_id = start + minutes(5 * rng.randrange(1, 72)), rng.randrange(1, 4)
        tz = rng.choice(ZONES)
        slots.append(
            Slot(
                slot_id,
                therapist_id,
                start.astimezone(tz),
                end.astimezone(tz),
                minutes(rng.choice((0, 0, 5, 10, 15))),
                minutes(rng.choice((0, 0, 5, 10))),
                rng.choice(("", "", "P1", "P2", "P3", "zocdoc:1", "kareo:1")),
                rng.choice(("hub", "gcal", "ical")),
            )
        )
    return slots


def random_blocks(rng: random.Random, count: int) -> list[Block]:
    """Random busy blocks, a few of them empty."""
    blocks: list[Block] = []
    for block_id in rng.sample(range(1, 10 * count), count):
        start = grid_time(rng)
        blocks.append(Block(block_id, rng.randrange(1, 4), start, start + minutes(5 * rng.randrange(0, 36))))
    return blocks


Row = tuple[str, tuple[int, ...], tuple[int, ...], int | None, float, float]


def rows(findings: Iterable[Finding]) -> list[Row]:
    """Findings as comparable rows, times as POSIX timestamps."""
    out = []
    for f in findings:
        assert f.start is not None and f.end is not None
        out.append(
            (
                f.kind,
                f.appointment_ids,
                f.busy_block_ids,
                f.therapist_id,
                f.start.timestamp(),
                f.end.timestamp(),
            )
        )
    return sorted(out)


def naive_overlaps(slots: list[Slot]) -> list[Row]:
    """Every pair of one therapist's slots checked directly."""
    out: list[Row] = []
    for a, b in combinations(slots, 2):
        if a.therapist_id != b.therapist_id:
            continue
        # Timestamps, because arithmetic on two datetimes sharing a ZoneInfo is wall-clock arithmetic.
        low = max(
            a.start.timestamp() - a.buffer_before.total_seconds(),
            b.start.timestamp() - b.buffer_before.total_seconds(),
        )
        high = min(
            a.end.timestamp() + a.buffer_after.total_seconds(),
            b.end.timestamp() + b.buffer_after.total_seconds(),
        )
        if low < high:
            start, end = (
                max(a.start.timestamp(), b.start.timestamp()),
                min(a.end.timestamp(), b.end.timestamp()),
            )
            if start >= end:
                start, end = low, high
            out.append(("overlap", tuple(sorted((a.id, b.id))), (), a.therapist_id, start, end))
    return sorted(out)


def naive_external_busy(slots: list[Slot], blocks: list[Block]) -> list[Row]:
    """Every slot against every block of the same therapist."""
    out: list[Row] = []
    for s in slots:
        for b in blocks:
            start, end = (
                max(s.start.timestamp(), b.start.timestamp()),
                min(s.end.timestamp(), b.end.timestamp()),
            )
            if s.therapist_id == b.therapist_id and start < end:
                out.append(("external_busy", (s.id,), (b.id,), s.therapist_id, start, end))
    return sorted(out)


def naive_patient_overlaps(slots: list[Slot]) -> list[Row]:
    """Every pair of slots with the same known patient checked directly."""
    out: list[Row] = []
    for a, b in combinations(slots, 2):
        start, end = max(a.start.timestamp(), b.start.timestamp()), min(a.end.timestamp(), b.end.timestamp())
        if a.patient_ref and a.patient_ref == b.patient_ref and start < end:
            therapist_id = a.therapist_id if a.therapist_id == b.therapist_id else None
            out.append(("patient_overlap", tuple(sorted((a.id, b.id))), (), therapist_id, start, end))
    return sorted(out)


def namespace(ref: str) -> str:
    return ref.split(":", 1)[0] if ":" in ref else ""


def naive_duplicates(slots: list[Slot], tolerance: timedelta) -> list[Row]:
    """Every pair of slots checked against the duplicate rules."""
    out: list[Row] = []
    limit = tolerance.total_seconds()
    for a, b in combinations(slots, 2):
        (a_start, a_end), (b_start, b_end) = (
            (a.start.timestamp(), a.end.timestamp()),
            (b.start.timestamp(), b.end.timestamp()),
        )
        if (
            a.therapist_id == b.therapist_id
            and a.source_system != b.source_system
            and abs(a_start - b_start) <= limit
            and abs(a_end - b_end) <= limit
            and (
                a.patient_ref == b.patient_ref
                or "" in (a.patient_ref, b.patient_ref)
                or namespace(a.patient_ref) != namespace(b.patient_ref)
            )
        ):
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start >= end:
                start, end = min(a_start, b_start), max(a_end, b_end)
            out.append(("duplicate", tuple(sorted((a.id, b.id))), (), a.therapist_id, start, end))
    return sorted(out)


def naive_outside_hours(slots: list[Slot], weeks: Mapping[int, WorkingWeek]) -> list[tuple[int, ...]]:
    """Each slot sampled every minute (all times are on that grid) against local hours and time off."""
    outside = []
    for s in slots:
        rules = weeks.get(s.therapist_id)
        if rules is None:
            continue
        instant = s.start
        while instant < s.end:
            local = instant.astimezone(rules.tz)
            clock = local.time()
            working = any(
                low <= clock and (clock < high or high == time(0))
                for low, high in rules.hours.get(local.weekday(), ())
            )
            off = any(low <= instant < high for low, high in rules.time_off)
            if off or not working:
                outside.append((s.id,))
                break
            instant += minutes(1)
    return sorted(outside)


@pytest.mark.parametrize("seed", range(6))
def test_find_overlaps_matches_a_naive_pairwise_check(seed: int) -> None:
    slots = random_slots(random.Random(seed), 300)
    findings = find_overlaps(slots)
    assert rows(findings) == naive_overlaps(slots)
    assert keys(findings) == sorted(keys(findings))
    assert len(findings) > 50  # the data really does clash


@pytest.mark.parametrize("seed", range(6))
def test_find_external_busy_matches_a_naive_pairwise_check(seed: int) -> None:
    rng = random.Random(seed)
    slots, blocks = random_slots(rng, 300), random_blocks(rng, 80)
    findings = find_external_busy(slots, blocks)
    assert rows(findings) == naive_external_busy(slots, blocks)
    assert keys(findings) == sorted(keys(findings))
    assert len(findings) > 20


@pytest.mark.parametrize("seed", range(6))
def test_patient_overlaps_and_duplicates_match_naive_pairwise_checks(seed: int) -> None:
    slots = random_slots(random.Random(seed), 300)
    assert rows(find_patient_overlaps(slots)) == naive_patient_overlaps(slots)
    duplicates = find_duplicates(slots)
    assert rows(duplicates) == naive_duplicates(slots, minutes(5))
    assert keys(duplicates) == sorted(keys(duplicates))
    assert duplicates


@pytest.mark.parametrize("seed", range(6))
def test_find_outside_hours_matches_sampling_each_slot_in_local_time(seed: int) -> None:
    rng = random.Random(seed)
    slots = random_slots(rng, 300)
    hours = parse_working_hours(
        {
            **{day: ["07:00-12:00", "13:00-24:00"] for day in WEEKDAYS},
            "saturday": ["00:00-01:00", "20:00-24:00"],
            "sunday": ["00:00-00:30", "04:00-24:00"],
        }
    )
    weeks = {
        therapist_id: week(
            hours,
            zone,
            time_off=tuple(
                (start, start + minutes(5 * rng.randrange(1, 100)))
                for start in (grid_time(rng), grid_time(rng))
            ),
        )
        for therapist_id, zone in [(1, "Europe/Berlin"), (2, "America/New_York"), (3, "Asia/Kolkata")]
    }
    findings = find_outside_hours(slots, weeks)
    assert [f.appointment_ids for f in findings] == naive_outside_hours(slots, weeks)
    assert 0 < len(findings) < len(slots)
