"""Contract tests: the Kareo connector, through zeep and the emulator's WSDL, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations.base import ConnectorAuthError, ConnectorConfigError, ConnectorError, CursorExpired
from integrations.kareo.connector import THROTTLE_WAIT, KareoConnector
from integrations.kareo.emulator import THROTTLE_MESSAGE, appointment_data, kareo_datetime
from integrations.models import Connection

from .conftest import CREDENTIALS, ZONE, local

CHICAGO = ZoneInfo(ZONE)


def connector(emulator, *, credentials=None, config=None) -> KareoConnector:
    connection = Connection(
        platform="kareo",
        display_name="Kareo",
        credentials={**CREDENTIALS, "wsdl_url": emulator.wsdl_url, **(credentials or {})},
        config={"timezone": ZONE, **(config or {})},
    )
    return KareoConnector(connection)


def window(days_before: int = 7, days_after: int = 30) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=days_before), now + timedelta(days=days_after)


def test_a_full_read_maps_kareo_rows_to_events_in_the_practice_zone(emulator):
    emulator.add_appointment(
        appointment_data(
            101,
            local(2, 10),
            local(2, 10, 50),
            resource="Jane Doe, LCSW",
            status="CheckedIn",
            patient_id=555,
            ServiceLocationName="Annex",
        )
    )
    emulator.add_appointment(appointment_data(102, local(3, 9), local(3, 9, 30), status="NoShow", Type="O"))
    emulator.add_appointment(appointment_data(103, local(60, 9), local(60, 10)))  # outside the window
    result = connector(emulator).fetch(cursor=None, window=window())
    events = {e.external_id: e for e in result.events}
    assert sorted(events) == ["101", "102"] and result.complete_window is not None
    first = events["101"]
    assert first.start == local(2, 10).replace(tzinfo=CHICAGO) and first.start.utcoffset() is not None
    assert first.end - first.start == timedelta(minutes=50)
    assert (first.status, first.provider_key, first.patient_key, first.location_key) == (
        "confirmed",
        "Jane Doe, LCSW",
        "555",
        "Annex",
    )
    assert (events["102"].status, events["102"].type) == ("no_show", "other")
    assert "PatientFullName" not in first.raw  # never asked for: names are PHI
    assert result.cursor == max(e.version for e in result.events) and result.cursor.endswith("Z")


def test_the_full_read_asks_only_for_the_needed_fields_and_whole_local_days(emulator):
    w = window()
    connector(emulator).fetch(cursor=None, window=w)
    call = emulator.calls[-1]
    low = (w[0] - timedelta(days=1)).astimezone(CHICAGO)  # a day early: appointments running into the window
    assert call["filter"]["StartDate"] == f"{low.month}/{low.day}/{low.year}"
    assert "EndDate" in call["filter"] and "FromLastModifiedDate" not in call["filter"]
    assert "PatientFullName" not in call["fields"] and {"ID", "LastModifiedDate"} <= call["fields"]


@pytest.mark.parametrize(
    ("kareo", "canonical"),
    [
        ("Scheduled", "scheduled"),
        ("ReminderSent", "scheduled"),
        ("Tentative", "scheduled"),
        ("NeedsReschedule", "scheduled"),
        ("Unknown", "scheduled"),
        ("Confirmed", "confirmed"),
        ("Roomed", "confirmed"),
        ("ReadyToBeSeen", "confirmed"),
        ("CheckedOut", "completed"),
        ("NoShow", "no_show"),
        ("Cancelled", "cancelled"),
        ("Rescheduled", "cancelled"),
    ],
)
def test_confirmation_statuses_map_per_the_platform_table(emulator, kareo, canonical):
    emulator.add_appointment(appointment_data(1, local(1), local(1, 11), status=kareo))
    (event,) = connector(emulator).fetch(cursor=None, window=window()).events
    assert event.status == canonical


def test_an_incremental_read_asks_from_the_cursor_and_returns_only_changes(emulator):
    emulator.add_appointment(appointment_data(1, local(1), local(1, 11), last_modified=local(-5)))
    emulator.add_appointment(appointment_data(2, local(2), local(2, 11), last_modified=local(-3)))
    full = connector(emulator).fetch(cursor=None, window=window())
    emulator.update_appointment(2, ConfirmationStatus="Cancelled")
    delta = connector(emulator).fetch(cursor=full.cursor, window=window())
    assert [e.external_id for e in delta.events] == ["2"] and delta.complete_window is None
    assert delta.events[0].status == "cancelled" and delta.cursor > full.cursor
    assert "FromLastModifiedDate" in emulator.calls[-1]["filter"]
    assert "StartDate" not in emulator.calls[-1]["filter"]


def test_the_version_is_the_last_modified_stamp_in_utc(emulator):
    emulator.add_appointment(
        appointment_data(1, local(1), local(1, 11), last_modified=datetime(2025, 7, 1, 9, 15, 42))
    )
    (event,) = connector(emulator).fetch(cursor=None, window=window()).events
    assert event.version == "2025-07-01T14:15:42.000000Z"  # 9:15:42 CDT


def test_an_empty_incremental_read_keeps_the_cursor(emulator):
    cursor = "2025-07-01T14:15:42.000000Z"
    result = connector(emulator).fetch(cursor=cursor, window=window())
    assert result.events == [] and result.cursor == cursor


def test_a_cursor_that_is_not_an_instant_asks_for_a_full_read(emulator):
    with pytest.raises(CursorExpired):
        connector(emulator).fetch(cursor="not-a-stamp", window=window())


def test_one_unreadable_row_is_reported_and_the_rest_returned(emulator):
    emulator.add_appointment(appointment_data(1, local(1), local(1, 11)))
    emulator.add_appointment({**appointment_data(2, local(2), local(2, 11)), "EndDate": "someday"})
    result = connector(emulator).fetch(cursor=None, window=window())
    assert [e.external_id for e in result.events] == ["1"]
    assert result.unreadable_ids == frozenset({"2"}) and result.errors[0].startswith("2: ")
    assert result.cursor is None  # read the unreadable row again next time


def test_throttling_is_a_retryable_error_with_a_wait(emulator):
    emulator.set_fault("throttle")
    with pytest.raises(ConnectorError) as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert not info.value.permanent and info.value.retry_after == THROTTLE_WAIT
    assert THROTTLE_MESSAGE in info.value.message


def test_polling_faster_than_kareo_allows_is_throttled(emulator):
    emulator.min_interval = 60
    connector(emulator).fetch(cursor=None, window=window())
    with pytest.raises(ConnectorError) as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert info.value.retry_after == THROTTLE_WAIT


@pytest.mark.parametrize("field", ["password", "user", "customer_key"])
def test_refused_credentials_are_an_auth_error(emulator, field):
    with pytest.raises(ConnectorAuthError, match="Kareo refused the credentials"):
        connector(emulator, credentials={field: "wrong"}).fetch(cursor=None, window=window())


def test_an_in_band_error_is_reported_with_its_message(emulator):
    emulator.set_fault("error", message="Unexpected database error")
    with pytest.raises(ConnectorError, match="Unexpected database error") as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert not info.value.permanent


def test_an_in_band_error_about_the_request_is_permanent(emulator):
    emulator.set_fault("error", message="Invalid filter: StartDate")
    with pytest.raises(ConnectorError) as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert info.value.permanent


@pytest.mark.parametrize(
    ("fault", "options"),
    [("server_error", {}), ("malformed", {})],
)
def test_soap_faults_and_unreadable_bodies_are_retryable(emulator, fault, options):
    emulator.set_fault(fault, **options)
    with pytest.raises(ConnectorError) as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert not info.value.permanent and not isinstance(info.value, ConnectorAuthError)


def test_a_timeout_is_retryable(emulator, monkeypatch):
    from integrations.kareo import connector as module

    monkeypatch.setattr(module, "DEFAULT_TIMEOUT", (1.0, 0.5))
    monkeypatch.setattr(module, "_clients", {})
    emulator.set_fault("timeout", seconds=2.0)
    with pytest.raises(ConnectorError, match="timed out") as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert not info.value.permanent


def test_the_endpoint_can_be_overridden_while_the_wsdl_stays(emulator):
    c = connector(
        emulator, credentials={"endpoint": "http://127.0.0.1:9/services/soap/2.1/KareoServices.svc"}
    )
    with pytest.raises(ConnectorError, match="failed|timed out") as info:
        c.fetch(cursor=None, window=window())
    assert not info.value.permanent


def test_an_unreachable_wsdl_is_retryable():
    connection = Connection(
        platform="kareo",
        credentials={**CREDENTIALS, "wsdl_url": "http://127.0.0.1:9/KareoServices.svc?wsdl"},
        config={"timezone": ZONE},
    )
    with pytest.raises(ConnectorError) as info:
        KareoConnector(connection).fetch(cursor=None, window=window())
    assert not info.value.permanent


@pytest.mark.parametrize("config", [{}, {"timezone": ""}, {"timezone": "Mars/Olympus_Mons"}])
def test_a_connection_without_a_valid_practice_zone_is_refused(emulator, config):
    c = connector(emulator)
    c.connection.config = config
    with pytest.raises(ConnectorConfigError, match="[Tt]ime ?zone|timezone"):
        c.fetch(cursor=None, window=window())


def test_missing_credentials_are_a_config_error(emulator):
    c = connector(emulator)
    c.credentials = {"wsdl_url": emulator.wsdl_url}
    with pytest.raises(ConnectorConfigError, match="customer_key"):
        c.fetch(cursor=None, window=window())


def test_wall_times_in_the_dst_gap_and_overlap_still_parse(emulator):
    # 2025-11-02 1:30 AM happens twice in Chicago; the first (CDT) occurrence is taken.
    emulator.add_appointment(
        {
            **appointment_data(1, local(1), local(1, 11)),
            "StartDate": "11/2/2025 1:30:00 AM",
            "EndDate": "11/2/2025 2:30:00 AM",
        }
    )
    result = connector(emulator).fetch(
        cursor=None, window=(datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 3, tzinfo=UTC))
    )
    (event,) = result.events
    assert event.start == datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    assert event.end == datetime(2025, 11, 2, 8, 30, tzinfo=UTC)
    assert kareo_datetime(event.start.astimezone(CHICAGO)) == "11/2/2025 1:30:00 AM"


def test_the_documented_sample_response_is_read(emulator):
    """platforms.md §5's sample GetAppointments answer (element names [C], value formats [I]), replayed with
    its elements in the WSDL's order (the order a WCF service writes; the sample lists them loosely)."""
    body = (Path(__file__).parent / "fixtures" / "get_appointments_response.xml").read_bytes()
    emulator.set_fault("canned", body=body)
    c = connector(emulator)
    result = c.fetch(
        cursor=None, window=(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC))
    )
    (event,) = result.events
    assert (event.external_id, event.status, event.provider_key, event.patient_key, event.type) == (
        "884221",
        "confirmed",
        "Jane Doe, LCSW",
        "10423",
        "consult",
    )
    assert event.start == datetime(2025, 3, 4, 16, 0, tzinfo=UTC)  # 10:00 CST
    assert event.version == "2025-02-21T15:15:42.000000Z" == result.cursor


def test_an_answer_that_does_not_follow_the_wsdl_is_an_error_never_an_empty_read(emulator):
    # IsError before ErrorMessage breaks the schema's sequence: zeep refuses it rather than half-reading it,
    # so an error cannot pass for a successful read with no appointments (which would cancel the window).
    body = (Path(__file__).parent / "fixtures" / "get_appointments_response.xml").read_text()
    body = body.replace(
        "<ErrorMessage/><IsError>false</IsError>", "<IsError>true</IsError><ErrorMessage>x</ErrorMessage>"
    )
    body = (
        body[: body.index("<Appointments>")]
        + "</GetAppointmentsResult></GetAppointmentsResponse></s:Body></s:Envelope>"
    )
    emulator.set_fault("canned", body=body.encode())
    with pytest.raises(ConnectorError, match="cannot read") as info:
        connector(emulator).fetch(cursor=None, window=window())
    assert not info.value.permanent


def test_an_appointment_running_into_the_window_is_part_of_the_complete_read(emulator):
    low = datetime(2025, 3, 10, 5, 30, tzinfo=UTC)  # 0:30 in Chicago (CDT)
    emulator.add_appointment(appointment_data(1, datetime(2025, 3, 9, 23, 30), datetime(2025, 3, 10, 1, 0)))
    result = connector(emulator).fetch(cursor=None, window=(low, low + timedelta(days=7)))
    assert [e.external_id for e in result.events] == ["1"] and result.complete_window[0] == low
