"""Input an attacker (or a broken client) sends: each answers a 4xx in the error shape and changes nothing
(issue 12: deep JSON, out-of-range instants, ids past the column's range, bodies that are not objects)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audit.models import AuditLog
from scheduler.models import Appointment, TimeOff
from tests.test_api import API, SLOT, assert_error, booking, client_for

BIG = str(2**64)
JUST_PAST_BIGINT = str(2**63)
FAR = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:00:00-05:00", "1899-12-31T23:59:59+00:00"]


@pytest.fixture
def desk(frontdesk_user):
    return client_for(frontdesk_user)


@pytest.fixture
def appt(desk, therapist_a):
    response = desk.post(f"{API}/appointments/", booking(therapist_a), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _raw(client, method, url, body: str):
    return getattr(client, method)(url, data=body, content_type="application/json")


@pytest.mark.parametrize("depth", [65, 2000, 50_000])
def test_deeply_nested_json_is_a_400_everywhere_even_anonymously(db, desk, appt, depth):
    deep = "[" * depth + "]" * depth
    deep_obj = '{"a":' * depth + "1" + "}" * depth
    for body in (deep, deep_obj, "[" * depth, '{"a": ' + deep + "}"):
        assert_error(_raw(APIClient(), "post", f"{API}/auth/token/", body), 400, "malformed_request")
        assert_error(_raw(desk, "post", f"{API}/appointments/", body), 400, "malformed_request")
        assert_error(_raw(desk, "patch", f"{API}/appointments/{appt['id']}/", body), 400, "malformed_request")
        assert_error(
            _raw(desk, "post", f"{API}/appointments/{appt['id']}/cancel/", body), 400, "malformed_request"
        )
    assert Appointment.objects.get(pk=appt["id"]).status == "scheduled"


def test_json_nested_a_few_levels_still_works(desk, therapist_a):
    # a realistic body (objects in objects) is untouched by the depth limit
    body = {**booking(therapist_a), "meta": {"a": {"b": [{"c": 1}]}}}
    assert desk.post(f"{API}/appointments/", body, format="json").status_code == 201


@pytest.mark.parametrize("body", ["[]", "null", "0", "false", "true", '"cancel"', "[{}]"])
def test_a_body_that_is_not_an_object_is_a_400_and_cancels_nothing(desk, appt, body):
    before = AuditLog.objects.count()
    for path in ("cancel/", "status/"):
        response = _raw(desk, "post", f"{API}/appointments/{appt['id']}/{path}", body)
        assert_error(response, 400, "invalid", "must be a JSON object")
    assert_error(_raw(desk, "post", f"{API}/appointments/", body), 400, "invalid")
    assert_error(_raw(desk, "patch", f"{API}/appointments/{appt['id']}/", body), 400, "invalid")
    assert Appointment.objects.get(pk=appt["id"]).status == "scheduled"
    assert AuditLog.objects.count() == before


def test_an_empty_body_still_cancels(desk, appt):
    response = desk.post(f"{API}/appointments/{appt['id']}/cancel/")
    assert response.status_code == 200, response.content
    assert Appointment.objects.get(pk=appt["id"]).status == "cancelled"


@pytest.mark.dbspecific
@pytest.mark.parametrize("instant", FAR)
def test_out_of_range_instants_are_a_400_on_every_write_and_range_query(
    desk, appt, therapist_a, session_service, instant
):
    t = therapist_a.pk
    near = "2026-12-07T10:00:00-05:00"
    writes = [
        desk.post(f"{API}/appointments/", {"therapist": t, "start": instant, "end": near}, format="json"),
        desk.post(f"{API}/appointments/", {"therapist": t, "start": near, "end": instant}, format="json"),
        desk.patch(f"{API}/appointments/{appt['id']}/", {"start": instant}, format="json"),
        desk.patch(f"{API}/appointments/{appt['id']}/", {"start": instant, "end": near}, format="json"),
        desk.post(f"{API}/therapists/{t}/time-off/", {"start": instant, "end": near}, format="json"),
        desk.post(f"{API}/therapists/{t}/time-off/", {"start": near, "end": instant}, format="json"),
    ]
    for response in writes:
        assert_error(response, 400, "invalid", "out of range")
    for path in (
        "appointments/",
        "calendar/",
        "appointments/ical",
        "conflicts/",
        f"therapists/{t}/free-slots/",
    ):
        for params in ({"start": instant, "end": near}, {"start": near, "end": instant}):
            response = desk.get(f"{API}/{path}", {**params, "service": session_service.pk})
            assert_error(response, 400, "invalid", "out of range")
    assert Appointment.objects.get(pk=appt["id"]).start == SLOT
    assert Appointment.objects.count() == 1
    assert not TimeOff.objects.exists()


def test_the_edges_of_the_accepted_range(desk, therapist_a):
    start = "2199-12-31T10:00:00+00:00"
    response = desk.post(
        f"{API}/appointments/",
        {"therapist": therapist_a.pk, "start": start, "end": start[:11] + "11:00:00+00:00"},
        format="json",
    )
    assert response.status_code in (201, 409), response.content  # accepted as a time; (not in hours: no rule)
    response = desk.get(
        f"{API}/appointments/", {"start": "1900-01-01T00:00:00+00:00", "end": "1900-02-01T00:00:00Z"}
    )
    assert response.status_code == 200, response.content


@pytest.mark.dbspecific
@pytest.mark.parametrize("value", [BIG, JUST_PAST_BIGINT, "0", "-1", "1" * 5000, "٣"])
def test_ids_past_the_column_range_in_filters_are_a_400(desk, value):
    for path in ("appointments/", "conflicts/", "appointments/ical"):
        for name in ("therapist", "office"):
            params = {name: value, "start": "2026-12-07T00:00:00Z", "end": "2026-12-08T00:00:00Z"}
            assert_error(desk.get(f"{API}/{path}", params), 400, "invalid")
    response = desk.get(f"{API}/therapists/1/free-slots/", {"service": "1", "duration": value})
    assert response.status_code in (400, 404)
    for name in ("limit", "offset"):
        if value == "0" and name == "offset":
            continue  # offset 0 is the default
        assert_error(desk.get(f"{API}/appointments/", {name: value}), 400, "invalid")


@pytest.mark.dbspecific
def test_ids_past_the_column_range_in_paths_are_a_404(desk):
    for path in (
        f"appointments/{BIG}/",
        f"appointments/{JUST_PAST_BIGINT}/cancel/",
        f"appointments/{BIG}/ical",
        f"therapists/{BIG}/",
        f"therapists/{BIG}/free-slots/",
        f"conflicts/{BIG}/",
        f"connections/{BIG}/",
        f"imports/{BIG}",
    ):
        response = desk.get(f"{API}/{path}")
        assert response.status_code in (404, 405), (path, response.status_code)
