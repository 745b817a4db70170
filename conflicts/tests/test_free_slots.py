from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conflicts.engine import DAY_NAMES, WorkingWeek, free_slots, parse_working_hours, working_intervals

MONDAY = date(2026, 5, 4)
OFFICE = {"monday": ["09:00-12:00", "13:00-17:00"], "tuesday": ["09:00-12:00", "13:00-17:00"]}

Interval = tuple[datetime, datetime]


def minutes(count: int) -> timedelta:
    """A duration in minutes."""
    return timedelta(minutes=count)


def at(clock: str, day: int = 0, tz: tzinfo = UTC) -> datetime:
    """Wall-clock "HH:MM" on the test Monday plus `day` days, in `tz`."""
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=tz)


def week(
    hours: Mapping[str, Sequence[str]] = OFFICE, tz: str = "UTC", time_off: tuple[Interval, ...] = ()
) -> WorkingWeek:
    """Working rules from "HH:MM-HH:MM" strings."""
    return WorkingWeek(ZoneInfo(tz), parse_working_hours(hours), time_off)


def monday(**arguments: Any) -> list[Interval]:
    """free_slots over the whole test Monday (UTC), 60-minute service in OFFICE hours unless told."""
    arguments = {
        "week": week(),
        "start": at("00:00"),
        "end": at("00:00", 1),
        "duration": minutes(60),
    } | arguments
    return free_slots(**arguments)


def starts(slots: Sequence[Interval], tz: tzinfo = UTC) -> list[str]:
    """The slots' local start times as "HH:MM"."""
    return [f"{start.astimezone(tz):%H:%M}" for start, _ in slots]


def clocks(first: str, last: str, every: int = 15) -> list[str]:
    """Clock times "HH:MM" from first to last inclusive, past midnight if last is earlier."""
    begin, finish = at(first), at(last, 1 if last < first else 0)
    return [f"{begin + minutes(n):%H:%M}" for n in range(0, int((finish - begin) / minutes(1)) + 1, every)]


# --- the grid -----------------------------------------------------------------------------------


def test_an_empty_week_gives_a_slot_every_15_minutes_from_the_start_of_hours() -> None:
    slots = monday(duration=minutes(30))
    assert starts(slots) == clocks("09:00", "11:30") + clocks("13:00", "16:30")
    assert all(end - start == minutes(30) and start.tzinfo is UTC for start, end in slots)


def test_slots_are_aligned_to_hours_that_do_not_start_on_the_quarter_hour() -> None:
    assert starts(monday(week=week({"monday": ["09:10-10:30"]}))) == ["09:10", "09:25"]


def test_a_50_minute_service_in_09_to_12_ends_with_the_11_00_slot() -> None:
    slots = monday(week=week({"monday": ["09:00-12:00"]}), duration=minutes(50))
    assert slots[-1] == (at("11:00"), at("11:50"))
    assert at("11:15") not in [start for start, _ in slots]  # 11:15 would end at 12:05


def test_no_slot_spans_the_lunch_gap() -> None:
    assert starts(monday()) == clocks("09:00", "11:00") + clocks("13:00", "16:00")


def test_a_day_without_hours_has_no_slots() -> None:
    assert free_slots(week=week(), start=at("00:00", 2), end=at("00:00", 3), duration=minutes(30)) == []


def test_a_custom_step_is_counted_from_the_start_of_hours() -> None:
    assert starts(monday(week=week({"monday": ["09:00-12:00"]}), step=minutes(40))) == [
        "09:00",
        "09:40",
        "10:20",
        "11:00",
    ]


# --- taken time and buffers ---------------------------------------------------------------------


def test_a_taken_appointment_removes_the_slots_it_overlaps() -> None:
    slots = monday(taken=[(at("10:30"), at("11:00"))])
    assert starts(slots) == ["09:00", "09:15", "09:30", "11:00"] + clocks("13:00", "16:00")


def test_touching_a_taken_interval_is_fine() -> None:
    slots = monday(week=week({"monday": ["09:00-13:00"]}), taken=[(at("10:00"), at("11:00"))])
    assert starts(slots) == ["09:00"] + clocks("11:00", "12:00")


@pytest.mark.parametrize(("taken_start", "offered"), [("10:59", False), ("11:00", True)])
def test_the_own_buffer_after_must_fit_before_the_next_taken_interval(
    taken_start: str, offered: bool
) -> None:
    # A 50-minute slot at 10:00 ends at 10:50; with 10 minutes after it, it needs 10:50-11:00 free.
    slots = monday(duration=minutes(50), buffer_after=minutes(10), taken=[(at(taken_start), at("12:00"))])
    assert ((at("10:00"), at("10:50")) in slots) is offered
    assert (at("10:15"), at("11:05")) not in slots


@pytest.mark.parametrize(("taken_end", "offered"), [("13:56", False), ("13:55", True)])
def test_the_own_buffer_before_must_fit_after_the_previous_taken_interval(
    taken_end: str, offered: bool
) -> None:
    slots = monday(buffer_before=minutes(5), taken=[(at("12:30"), at(taken_end))])
    assert ((at("14:00"), at("15:00")) in slots) is offered
    assert at("13:45") not in [start for start, _ in slots]


def test_slots_after_a_clash_stay_on_the_grid() -> None:
    slots = monday(
        week=week({"monday": ["09:00-12:00"]}),
        duration=minutes(20),
        buffer_before=minutes(5),
        buffer_after=minutes(5),
        taken=[(at("09:40"), at("10:12"))],
    )
    assert starts(slots) == ["09:00", "09:15", "10:30", "10:45", "11:00", "11:15", "11:30"]


def test_taken_intervals_may_overlap_be_unordered_and_be_in_any_zone() -> None:
    berlin, tokyo = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
    taken = [
        (at("15:00"), at("15:30")),
        (at("12:00", tz=berlin), at("12:45", tz=berlin)),  # 10:00-10:45 UTC in May
        (at("10:30"), at("11:00")),
        (at("19:15", tz=tokyo), at("19:20", tz=tokyo)),  # 10:15-10:20 UTC
    ]
    assert starts(monday(taken=taken)) == ["09:00", "11:00"] + clocks("13:00", "14:00") + clocks(
        "15:30", "16:00"
    )


def test_empty_taken_intervals_are_ignored() -> None:
    assert monday(taken=[(at("10:00"), at("10:00"))]) == monday()


# --- time off and the range ---------------------------------------------------------------------


def test_time_off_removes_slots() -> None:
    slots = monday(week=week(time_off=((at("10:00"), at("11:00")),)))
    assert starts(slots) == ["09:00", "11:00"] + clocks("13:00", "16:00")


def test_slots_after_time_off_are_counted_from_where_it_ends() -> None:
    slots = monday(week=week({"monday": ["09:00-12:00"]}, time_off=((at("08:00"), at("10:05")),)))
    assert starts(slots) == ["10:05", "10:20", "10:35", "10:50"]


def test_a_range_starting_mid_morning_keeps_the_grid_of_the_whole_day() -> None:
    slots = monday(start=at("10:07"), end=at("11:40"), duration=minutes(30))
    assert starts(slots) == ["10:15", "10:30", "10:45", "11:00"]  # 11:15 would end at 11:45


def test_a_range_in_another_zone_is_read_as_instants() -> None:
    new_york = ZoneInfo("America/New_York")
    assert monday(start=at("06:00", tz=new_york), end=at("08:00", tz=new_york)) == monday(
        start=at("10:00"), end=at("12:00")
    )


# --- local time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "change"),
    [
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Europe/Berlin", date(2026, 3, 29)),
        ("America/Phoenix", date(2026, 3, 8)),
    ],
)
def test_slots_keep_local_wall_clock_times_across_a_dst_change(zone: str, change: date) -> None:
    tz = ZoneInfo(zone)
    assert change.weekday() == 6
    hours = week({"saturday": ["09:00-12:00"], "sunday": ["09:00-12:00"]}, zone)
    saturday = datetime.combine(change - timedelta(days=1), time(0), tz)
    slots = free_slots(week=hours, start=saturday, end=saturday + timedelta(days=3), duration=minutes(60))
    assert starts(slots, tz) == clocks("09:00", "11:00") * 2
    assert all(end - start == minutes(60) for start, end in slots)
    before, after = slots[0][0].astimezone(tz), slots[-1][0].astimezone(tz)
    assert (before.date(), after.date()) == (change - timedelta(days=1), change)
    assert (before.utcoffset() != after.utcoffset()) == (zone != "America/Phoenix")


def test_hours_across_spring_forward_lose_the_skipped_hour() -> None:
    tz = ZoneInfo("America/New_York")
    change = datetime.combine(date(2026, 3, 8), time(0), tz)
    slots = free_slots(
        week=week({"sunday": ["00:00-06:00"]}, "America/New_York"),
        start=change,
        end=change + timedelta(days=1),
        duration=minutes(60),
    )
    assert starts(slots, tz) == clocks("00:00", "01:45") + clocks("03:00", "05:00")


def test_hours_across_midnight_are_one_interval_with_one_grid() -> None:
    late = week({"monday": ["18:00-24:00"], "tuesday": ["00:00-02:00"]})
    slots = monday(week=late, end=at("00:00", 2), duration=minutes(90), step=minutes(25))
    assert starts(slots) == clocks("18:00", "00:15", 25)  # 23:50, then 00:15, not 00:00
    assert (at("23:50"), at("01:20", 1)) in slots


def test_a_range_starting_after_midnight_keeps_the_grid_of_the_evening_before() -> None:
    late = week({"monday": ["18:00-24:00"], "tuesday": ["00:00-02:00"]})
    slots = monday(week=late, start=at("00:00", 1), end=at("00:00", 2), step=minutes(25))
    assert starts(slots) == ["00:15", "00:40"]


def test_hours_running_for_days_keep_the_grid_of_where_they_began() -> None:
    all_day = week({day: ["00:00-24:00"] for day in ("friday", "saturday", "sunday", "monday")})
    slots = monday(week=all_day, start=at("10:00"), end=at("11:00"), duration=minutes(10), step=minutes(25))
    assert starts(slots) == ["10:05", "10:30"]  # Friday 00:00 plus 197 and 198 steps


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": datetime(2026, 5, 4, 9)}, "naive datetime"),
        ({"end": datetime(2026, 5, 5)}, "naive datetime"),
        ({"taken": [(datetime(2026, 5, 4, 9), at("10:00"))]}, "naive datetime"),
        ({"start": at("12:00"), "end": at("12:00")}, "start must be before end"),
        ({"start": at("12:00"), "end": at("11:00")}, "start must be before end"),
        ({"duration": timedelta(0)}, "duration must be positive"),
        ({"duration": minutes(-30)}, "duration must be positive"),
        ({"step": timedelta(0)}, "step must be positive"),
        ({"buffer_before": minutes(-5)}, "buffers must not be negative"),
        ({"buffer_after": minutes(-5)}, "buffers must not be negative"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        monday(**arguments)


def test_working_intervals_refuses_naive_datetimes_and_empty_ranges() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        working_intervals(week(), datetime(2026, 5, 4), at("12:00"))
    with pytest.raises(ValueError, match="start must be before end"):
        working_intervals(week(), at("12:00"), at("12:00"))


# --- working_intervals --------------------------------------------------------------------------


def test_working_intervals_subtract_time_off_and_clip_to_the_range() -> None:
    rules = week(time_off=((at("10:00"), at("11:00")), (at("16:30"), at("08:00", 1))))
    assert working_intervals(rules, at("09:30"), at("10:00", 1)) == [
        (at("09:30"), at("10:00")),
        (at("11:00"), at("12:00")),
        (at("13:00"), at("16:30")),
        (at("09:00", 1), at("10:00", 1)),
    ]


def test_working_intervals_join_hours_across_midnight() -> None:
    late = week({"monday": ["18:00-24:00"], "tuesday": ["00:00-02:00"]})
    assert working_intervals(late, at("00:00"), at("00:00", 2)) == [(at("18:00"), at("02:00", 1))]


def test_working_intervals_read_hours_on_each_local_date() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    rules = week({"saturday": ["09:00-12:00"], "sunday": ["09:00-12:00"]}, "Europe/Berlin")
    saturday = datetime(2026, 3, 28, tzinfo=berlin)
    assert working_intervals(rules, saturday, saturday + timedelta(days=2)) == [
        (datetime(2026, 3, 28, 8, tzinfo=UTC), datetime(2026, 3, 28, 11, tzinfo=UTC)),
        (datetime(2026, 3, 29, 7, tzinfo=UTC), datetime(2026, 3, 29, 10, tzinfo=UTC)),
    ]


# --- cross-check against brute force ------------------------------------------------------------

ORIGIN = at("00:00", -7)  # minute 0 of the reference timeline
ZONES = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]


def minute(n: int) -> datetime:
    """Minute n of the reference timeline, in UTC."""
    return ORIGIN + minutes(n)


def random_hours(rng: random.Random) -> dict[str, list[str]]:
    """Random weekly hours on a 5-minute grid, some ending at 24:00 or starting at 00:00."""
    hours: dict[str, list[str]] = {}
    closed = rng.choice(DAY_NAMES)  # never round the clock, so every interval has an opening
    for day in DAY_NAMES:
        if day == closed:
            continue
        edges = sorted(rng.sample(range(0, 24 * 12 + 1), 2 * rng.randint(0, 3)))
        hours[day] = [
            f"{low * 5 // 60:02d}:{low * 5 % 60:02d}-{high * 5 // 60:02d}:{high * 5 % 60:02d}"
            for low, high in zip(edges[::2], edges[1::2], strict=True)
        ]
    return hours


def reference_slots(
    hours: Mapping[str, Sequence[str]],
    time_off: Sequence[tuple[int, int]],
    taken: Sequence[tuple[int, int]],
    start: int,
    end: int,
    duration: int,
    before: int,
    after: int,
    step: int,
) -> list[tuple[int, int]]:
    """Free slots, in timeline minutes, found one minute at a time (hours in UTC)."""
    working: set[int] = set()
    for day in range(21):
        for value in hours.get(DAY_NAMES[(ORIGIN + timedelta(days=day)).weekday()], ()):
            low, high = (int(clock[:2]) * 60 + int(clock[3:]) for clock in value.split("-"))
            working.update(range(day * 1440 + low, day * 1440 + high))
    for low, high in time_off:
        working.difference_update(range(low, high))
    busy = {m for low, high in taken for m in range(low, high)}
    slots = []
    for opening in sorted(m for m in working if m - 1 not in working):
        closing = opening
        while closing in working:
            closing += 1
        for candidate in range(opening, closing, step):
            if candidate < start or candidate + duration > end:
                continue
            covered = all(m in working for m in range(candidate, candidate + duration))
            clear = not any(m in busy for m in range(candidate - before, candidate + duration + after))
            if covered and clear:
                slots.append((candidate, candidate + duration))
    return slots


@pytest.mark.parametrize("seed", range(8))
def test_free_slots_agree_with_a_minute_by_minute_reference(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        hours = random_hours(rng)
        time_off = [(low, low + rng.randint(1, 600)) for low in rng.sample(range(7 * 1440, 10 * 1440), 2)]
        taken = [(low, low + rng.randint(0, 120)) for low in rng.sample(range(7 * 1440, 10 * 1440), 12)]
        start = rng.randint(7 * 1440, 9 * 1440)
        end = rng.randint(start + 1, 10 * 1440)
        duration, before, after = rng.randint(1, 120), rng.choice([0, 0, 5, 13]), rng.choice([0, 0, 10, 7])
        step = rng.choice([1, 5, 15, 25, 30, 60])
        actual = free_slots(
            week=week(hours, time_off=tuple((minute(low), minute(high)) for low, high in time_off)),
            start=minute(start),
            end=minute(end),
            duration=minutes(duration),
            buffer_before=minutes(before),
            buffer_after=minutes(after),
            taken=[(minute(low).astimezone(rng.choice(ZONES)), minute(high)) for low, high in taken],
            step=minutes(step),
        )
        expected = reference_slots(hours, time_off, taken, start, end, duration, before, after, step)
        assert actual == [(minute(low), minute(high)) for low, high in expected]
