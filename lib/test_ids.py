from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from integrations.http import MAX_RETRY_AFTER, retry_after_seconds
from lib.errors import InvalidInput
from lib.ids import MAX_ID, parse_id, parse_whole
from lib.timeutil import instant_in_range, require_aware, wall_clock_to_instant


@pytest.mark.parametrize("text", ["", " ", "0", "-1", "1.0", "²", "٣", "1e3", str(MAX_ID + 1), "1" * 5000])
def test_parse_id_refuses_what_int_or_the_database_would_choke_on(text):
    assert parse_id(text) is None


def test_parse_id_and_whole_accept_plain_numbers():
    assert parse_id("42") == 42
    assert parse_id(str(MAX_ID)) == MAX_ID
    assert parse_whole("0") == 0
    assert parse_whole("7", maximum=5) is None


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime.fromisoformat("9999-12-31T23:00:00-05:00"),
        datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
    ],
)
def test_instants_outside_the_supported_years_are_invalid_input_not_overflow(value):
    with pytest.raises(InvalidInput, match="out of range"):
        require_aware(value, "start")


def test_wall_clock_times_in_far_years_are_invalid_input():
    with pytest.raises(InvalidInput, match="out of range"):
        wall_clock_to_instant(date(1, 1, 1), time(0, 0), "America/New_York")
    with pytest.raises(InvalidInput, match="out of range"):
        wall_clock_to_instant(date(9999, 12, 31), time(23, 0), "Pacific/Kiritimati")
    assert instant_in_range(datetime(1900, 1, 1, tzinfo=UTC)) == datetime(1900, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("header", ["9" * 5000, "99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_is_capped_not_infinite(header):
    seconds = retry_after_seconds(header, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert seconds == MAX_RETRY_AFTER


def test_a_non_ascii_retry_after_is_ignored():
    assert retry_after_seconds("٣") is None
