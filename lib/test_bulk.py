"""lib.bulk stores exactly what the ORM would: datetimes, UUIDs, defaults, auto_now, encrypted JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from lib.bulk import insert_rows, update_rows
from scheduler.models import Appointment


@pytest.mark.dbspecific
def test_inserted_rows_read_back_like_orm_rows(therapist_a):
    start = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("America/New_York"))  # not UTC on purpose
    columns = ("source_system", "external_id", "therapist_id", "start", "end", "raw", "timezone")
    values = {
        "source_system": "zocdoc",
        "therapist_id": therapist_a.pk,
        "start": start,
        "end": start + timedelta(minutes=50),
        "raw": {"nested": ["é", 1, None]},
        "timezone": "America/New_York",
    }
    assert insert_rows(Appointment, [{**values, "external_id": "bulk-1"}], attnames=columns) == 1
    orm = Appointment.objects.create(**{**values, "external_id": "orm-1"})
    bulk = Appointment.objects.get(external_id="bulk-1")
    for name in ("start", "end", "raw", "status", "type", "version", "patient_ref", "series", "timezone"):
        assert getattr(bulk, name) == getattr(orm, name), name
    assert bulk.start == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    assert bulk.uid != orm.uid and bulk.uid.version == 4  # the callable default runs per row
    assert abs(bulk.created - orm.created) < timedelta(seconds=5) and bulk.updated is not None
    # Stored encrypted, like the ORM's rows: the payload is not in the table in clear.
    with connection.cursor() as cursor:
        cursor.execute("SELECT raw FROM scheduler_appointment WHERE external_id = %s", ["bulk-1"])
        assert "nested" not in cursor.fetchone()[0]


@pytest.mark.dbspecific
def test_updated_rows_change_only_the_given_columns(therapist_a):
    start = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    a = Appointment.objects.create(
        therapist=therapist_a, start=start, end=start + timedelta(hours=1), patient_ref="p-1"
    )
    moved = start + timedelta(hours=2)
    update_rows(
        Appointment,
        [{"pk": a.pk, "start": moved, "end": moved + timedelta(hours=1), "raw": {"v": 2}}],
        attnames=("start", "end", "raw"),
    )
    a.refresh_from_db()
    assert (a.start, a.raw, a.patient_ref) == (moved, {"v": 2}, "p-1")


def test_unknown_columns_are_refused():
    with pytest.raises(ValueError, match="no column 'nope'"):
        insert_rows(Appointment, [{"nope": 1}], attnames=("nope",))


@pytest.mark.dbspecific
def test_the_datetime_adapter_stores_what_django_stores():
    from lib.bulk import column_adapter

    adapt = column_adapter(Appointment._meta.get_field("start"))  # SQLite's own fast path, or Django's
    values = [
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 2, 30, 0, 123456, tzinfo=ZoneInfo("America/New_York")),
        datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"), fold=1),
        None,
    ]
    for value in values:
        assert adapt(value) == connection.ops.adapt_datetimefield_value(value)
