"""The emulator's own documented behaviour, checked with plain requests."""

from __future__ import annotations

import time

import pytest
import requests

from integrations.zocdoc.emulator import ZocdocEmulator, appointment_json, parse_instant, serve


@pytest.fixture
def emulator():
    return ZocdocEmulator(
        {"appointments": [appointment_json("2025-03-04T10:00:00-05:00", appointment_id="a1")]}
    )


@pytest.fixture
def api(emulator):
    server, url = serve(emulator)
    token = requests.post(
        f"{url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "audience": emulator.audience,
        },
        timeout=5,
    ).json()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    yield url, session
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "query", [{"page_size": 0}, {"page_size": 101}, {"page": 11}, {"page": "x"}, {"sort_by": "x"}]
)
def test_out_of_range_paging_is_a_400_error_result(api, query):
    url, session = api
    response = session.get(f"{url}/v1/appointments", params=query, timeout=5)
    body = response.json()
    assert response.status_code == 400
    assert body["error_type"] == "invalid_request" and body["request_id"] and body["errors"][0]["field"]


def test_an_unknown_appointment_is_a_404_error_result_and_a_known_one_is_returned(api):
    url, session = api
    missing = session.get(f"{url}/v1/appointments/nope", timeout=5)
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "appointment_id"
    assert session.get(f"{url}/v1/appointments/a1", timeout=5).json()["data"]["appointment_id"] == "a1"


def test_no_more_than_1000_results_are_ever_reachable(api, emulator):
    url, session = api
    emulator.add_appointments(appointment_json("2025-03-05T10:00:00Z") for _ in range(1100))
    last = session.get(f"{url}/v1/appointments", params={"page": 9, "page_size": 100}, timeout=5).json()
    beyond = session.get(f"{url}/v1/appointments", params={"page": 10, "page_size": 100}, timeout=5).json()
    assert (last["total_count"], len(last["data"]), last["next_url"]) == (1101, 100, None)
    assert beyond["data"] == []


def test_filters_and_next_url(api, emulator):
    url, session = api
    emulator.add_appointment(
        appointment_json("2025-03-04T12:00:00-05:00", appointment_id="a2", appointment_status="cancelled")
    )
    params = {"start_time_utc_min": "2025-03-04 15:00:00+00:00", "page_size": 1, "sort_direction": "asc"}
    first = session.get(f"{url}/v1/appointments", params=params, timeout=5).json()
    second = requests.get(first["next_url"], headers=session.headers, timeout=5).json()
    assert [first["data"][0]["appointment_id"], second["data"][0]["appointment_id"]] == ["a1", "a2"]
    assert second["next_url"] is None
    cancelled = session.get(
        f"{url}/v1/appointments", params={"statuses": "cancelled,no_show"}, timeout=5
    ).json()
    assert [a["appointment_id"] for a in cancelled["data"]] == ["a2"]


def test_a_missing_or_lapsed_token_is_401():
    emulator = ZocdocEmulator(token_ttl=0.1)
    server, url = serve(emulator)
    try:
        assert requests.get(f"{url}/v1/appointments", timeout=5).status_code == 401
        credentials = {"client_id": emulator.client_id, "client_secret": emulator.client_secret}
        token = requests.post(
            f"{url}/oauth/token",
            json={"grant_type": "client_credentials", "audience": emulator.audience, **credentials},
            timeout=5,
        ).json()["access_token"]
        time.sleep(0.2)
        response = requests.get(
            f"{url}/v1/appointments", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert response.status_code == 401
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "value",
    ["2024-01-01 00:00:00+00:00", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00 00:00"],
)
def test_instants_parse_leniently(value):
    assert parse_instant(value).isoformat() == "2024-01-01T00:00:00+00:00"
