"""Contract tests of the Zocdoc connector, over real HTTP against the local emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.test import RequestFactory

from integrations import registry
from integrations.base import ConnectorAuthError, ConnectorError, CursorExpired
from integrations.models import Connection
from integrations.zocdoc import connector as zocdoc
from integrations.zocdoc.connector import ZocdocConnector
from integrations.zocdoc.emulator import (
    WEBHOOK_SIGNATURE_HEADER,
    ZocdocEmulator,
    appointment_json,
    serve,
    stamp,
)

FIXTURES = Path(__file__).parent / "fixtures"
WINDOW = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def emulator():
    return ZocdocEmulator({"client_id": "hub", "client_secret": "s3cret"})


@pytest.fixture
def base_url(emulator):
    server, url = serve(emulator)
    yield url
    server.shutdown()
    server.server_close()


def make_connector(base_url: str, emulator: ZocdocEmulator, **credentials) -> ZocdocConnector:
    credentials = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "base_url": base_url,
        "token_url": f"{base_url}/oauth/token",
        "webhook_key": emulator.webhook_key,
        **credentials,
    }
    return ZocdocConnector(Connection(platform="zocdoc", display_name="Z", credentials=credentials))


@pytest.fixture
def connector(base_url, emulator):
    return make_connector(base_url, emulator)


def seed(emulator: ZocdocEmulator, count: int, **fields) -> list[str]:
    """``count`` appointments 20 minutes apart in WINDOW, each last modified one second after the previous."""
    first, modified = WINDOW[0] + timedelta(hours=1), datetime(2025, 2, 1, tzinfo=UTC)
    rows = [
        appointment_json(
            (first + i * timedelta(minutes=20)).astimezone(NEW_YORK),
            appointment_id=f"appt-{i:05d}",
            last_modified_time_utc=stamp(modified + timedelta(seconds=i)),
            **fields,
        )
        for i in range(count)
    ]
    emulator.add_appointments(rows)
    return [row["appointment_id"] for row in rows]


def test_a_full_read_follows_three_pages_and_returns_the_newest_stamp_as_cursor(connector, emulator):
    ids = seed(emulator, 250)
    emulator.add_appointment(appointment_json("2025-04-02T09:00:00-04:00", appointment_id="april"))

    result = connector.fetch(cursor=None, window=WINDOW)

    assert sorted(e.external_id for e in result.events) == ids
    assert [q["page"] for q in emulator.api_requests()] == ["0", "1", "2"]
    assert result.cursor == "2025-02-01T00:04:09.000000Z"  # the 250th stamp
    assert result.complete_window == WINDOW


def test_the_documented_example_appointment_is_normalised(base_url, emulator):
    page = json.loads((FIXTURES / "appointments_page.json").read_text())
    emulator.add_appointments(page["data"])

    [event] = (
        make_connector(base_url, emulator, default_duration_minutes=50)
        .fetch(cursor=None, window=WINDOW)
        .events
    )

    assert event.external_id == "d04b049a-41b1-4aba-9268-d8973cf72cdd"
    assert event.start == datetime(2025, 3, 4, 15, 0, tzinfo=UTC) and event.start.utcoffset() is not None
    assert event.end - event.start == timedelta(minutes=50)  # Zocdoc sends no end: the configured length
    assert (event.status, event.type, event.deleted) == ("confirmed", "consult", False)
    assert event.provider_key == "pr_abc123-def456_wxyz7890"
    assert event.location_key == "lo_abc123-def456_wxyz7890"
    assert event.patient_key == "hub-pt-7f3c"
    assert event.version == "2025-02-21T09:15:42.000000Z"
    assert event.raw == page["data"][0]


def test_an_incremental_read_returns_only_what_changed_since_the_cursor(connector, emulator):
    ids = seed(emulator, 20)
    cursor = connector.fetch(cursor=None, window=WINDOW).cursor
    emulator.update_appointment(ids[3], appointment_status="cancelled")
    emulator.update_appointment(ids[7], start_time="2025-06-01T10:00:00-04:00")  # moved out of the window

    result = connector.fetch(cursor=cursor, window=WINDOW)

    # The lower bound is inclusive: the row stamped exactly at the cursor comes back again (same version).
    assert {e.external_id for e in result.events} == {ids[3], ids[7], ids[19]}
    assert {e.external_id: e.status for e in result.events}[ids[3]] == "cancelled"
    assert result.cursor > cursor and result.complete_window is None
    assert "start_time_utc_min" not in emulator.api_requests()[-1]


def test_an_incremental_read_without_changes_keeps_the_cursor(connector, emulator):
    seed(emulator, 3)
    cursor = connector.fetch(cursor=None, window=WINDOW).cursor
    assert connector.fetch(cursor=cursor, window=WINDOW).cursor == cursor


def test_an_unreadable_cursor_asks_for_a_full_read(connector):
    with pytest.raises(CursorExpired):
        connector.fetch(cursor="page-token-from-elsewhere", window=WINDOW)


@pytest.mark.parametrize(
    ("zocdoc_status", "status"),
    [
        ("pending_booking", "scheduled"),
        ("pending_reschedule", "scheduled"),
        ("reschedule_failed", "scheduled"),
        ("confirmed", "confirmed"),
        ("rescheduled", "confirmed"),
        ("cancelled", "cancelled"),
        ("booking_failed", "cancelled"),
        ("no_show", "no_show"),
    ],
)
def test_every_documented_status_maps_and_cancellation_is_never_a_deletion(
    connector, emulator, zocdoc_status, status
):
    seed(emulator, 1, appointment_status=zocdoc_status)
    [event] = connector.fetch(cursor=None, window=WINDOW).events
    assert (event.status, event.deleted) == (status, False)


@pytest.mark.parametrize(
    ("visit_type", "type_"),
    [
        ("in_person", "consult"),
        ("zocdoc_video_service", "telehealth"),
        ("third_party_video_service", "telehealth"),
    ],
)
def test_video_visits_are_telehealth(connector, emulator, visit_type, type_):
    seed(emulator, 1, visit_type=visit_type)
    assert connector.fetch(cursor=None, window=WINDOW).events[0].type == type_


def test_the_1000_result_cap_is_handled_by_halving_the_window(connector, emulator):
    ids = seed(emulator, 1500)

    result = connector.fetch(cursor=None, window=WINDOW)

    assert sorted(e.external_id for e in result.events) == ids
    assert result.complete_window == WINDOW
    ends = {q.get("start_time_utc_max") for q in emulator.api_requests()}
    assert len(ends) > 1  # the window was split
    assert max(int(q["page"]) for q in emulator.api_requests()) < 10


def test_the_1000_result_cap_is_handled_in_incremental_reads_too(connector, emulator):
    ids = seed(emulator, 1200)
    result = connector.fetch(cursor="2025-01-01 00:00:00+00:00", window=WINDOW)
    assert sorted(e.external_id for e in result.events) == ids


def test_a_set_changing_while_paged_through_is_read_again_rather_than_reported_complete(base_url, emulator):
    ids = seed(emulator, 250)

    class InsertsOnce(ZocdocConnector):
        def _page(self, params, page):
            body = super()._page(params, page)
            if page == 0 and "early" not in emulator.appointments:  # shifts every later row by one
                emulator.add_appointment(
                    appointment_json("2025-03-01T00:30:00+00:00", appointment_id="early")
                )
            return body

    connector = InsertsOnce(make_connector(base_url, emulator).connection)
    result = connector.fetch(cursor=None, window=WINDOW)

    assert sorted(e.external_id for e in result.events) == sorted([*ids, "early"])
    assert [q["page"] for q in emulator.api_requests()].count("0") == 2


def test_an_expired_token_mid_sync_is_refreshed_transparently(connector, emulator):
    seed(emulator, 250)
    emulator.set_fault("expire_tokens", after=1)

    assert len(connector.fetch(cursor=None, window=WINDOW).events) == 250
    assert len(emulator.api_requests("/oauth/token")) == 2


def test_a_token_refused_twice_is_an_auth_error(connector, emulator):
    emulator.set_fault("expire_tokens", times=2)
    with pytest.raises(ConnectorAuthError):
        connector.fetch(cursor=None, window=WINDOW)


def test_a_wrong_client_secret_is_an_auth_error(base_url, emulator):
    with pytest.raises(ConnectorAuthError, match="access_denied|Unauthorized"):
        make_connector(base_url, emulator, client_secret="wrong").fetch(cursor=None, window=WINDOW)


def test_rate_limiting_is_retryable_after_the_platforms_delay(connector, emulator):
    emulator.set_fault("rate_limit", retry_after=42)
    with pytest.raises(ConnectorError) as info:
        connector.fetch(cursor=None, window=WINDOW)
    assert (info.value.permanent, info.value.retry_after) == (False, 42)


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_retryable(connector, emulator, status):
    emulator.set_fault("server_error", status=status)
    with pytest.raises(ConnectorError) as info:
        connector.fetch(cursor=None, window=WINDOW)
    assert not info.value.permanent


def test_a_failure_on_a_later_page_raises_instead_of_returning_a_partial_window(connector, emulator):
    seed(emulator, 250)
    emulator.set_fault("server_error", after=2)
    with pytest.raises(ConnectorError):
        connector.fetch(cursor=None, window=WINDOW)


def test_a_timeout_is_retryable(connector, emulator):
    connector.http.timeout = (1, 0.2)
    emulator.set_fault("timeout", seconds=1)
    with pytest.raises(ConnectorError, match="timed out") as info:
        connector.fetch(cursor=None, window=WINDOW)
    assert not info.value.permanent


def test_malformed_json_is_a_connector_error_not_a_crash(connector, emulator):
    emulator.set_fault("malformed")
    with pytest.raises(ConnectorError) as info:
        connector.fetch(cursor=None, window=WINDOW)
    assert not info.value.permanent


def webhook(body: bytes, signature: str | None):
    headers = {WEBHOOK_SIGNATURE_HEADER: signature} if signature is not None else {}
    return RequestFactory().post(
        "/webhooks/zocdoc/", data=body, content_type="application/json", headers=headers
    )


def test_a_validly_signed_recorded_webhook_announces_its_appointment(connector, emulator):
    body = (FIXTURES / "webhook_appointment_updated.json").read_bytes()
    assert connector.parse_webhook(webhook(body, emulator.sign(body))) == [
        "62g4ar44-1yv9-0931-dl3t-e9c2174kks09"
    ]


def test_the_emulators_webhook_is_accepted(connector, emulator):
    body, headers = emulator.webhook_request("appt-1", "cancelled")
    assert connector.parse_webhook(webhook(body, headers[WEBHOOK_SIGNATURE_HEADER])) == ["appt-1"]


@pytest.mark.parametrize("signature", [None, "", "0" * 64, "not hex ü"])
def test_a_missing_or_wrong_signature_is_refused(connector, emulator, signature):
    body, _ = emulator.webhook_request("appt-1")
    with pytest.raises(ConnectorAuthError):
        connector.parse_webhook(webhook(body, signature))


def test_a_tampered_body_is_refused_before_it_is_parsed(connector, emulator):
    body, headers = emulator.webhook_request("appt-1")
    with pytest.raises(ConnectorAuthError):
        connector.parse_webhook(
            webhook(body.replace(b"appt-1", b"appt-2"), headers[WEBHOOK_SIGNATURE_HEADER])
        )


def test_an_unknown_webhook_event_type_is_acknowledged_and_ignored(connector, emulator):
    body, headers = emulator.webhook_request("appt-1", event_type="provider_updated")
    assert connector.parse_webhook(webhook(body, headers[WEBHOOK_SIGNATURE_HEADER])) == []


def test_connector_and_emulator_agree_on_the_unconfirmed_signature_header():
    assert zocdoc.SIGNATURE_HEADER == WEBHOOK_SIGNATURE_HEADER


def test_the_registry_loads_the_zocdoc_connector():
    cls = registry.connector_class("zocdoc")
    assert cls is ZocdocConnector
    assert (cls.platform, cls.min_sync_interval, cls.supports_write) == (
        "zocdoc",
        timedelta(minutes=5),
        False,
    )
