"""The REST API as a client uses it: /api/v1/ with token auth, one error shape, safe retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from audit.models import AuditLog
from conflicts.models import Conflict
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from scheduler.models import Appointment, BusyBlock

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
API = "/api/v1"


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = api_token_issue(actor=None, user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def booking(therapist, start=SLOT, minutes=50, **extra):
    return {
        "therapist": therapist.pk,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        **extra,
    }


def assert_error(response, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert text in body["error"]["message"], body


@pytest.fixture
def desk(frontdesk_user):
    return client_for(frontdesk_user)


def test_unauthenticated_requests_get_401_in_the_error_shape(db):
    assert_error(APIClient().get(f"{API}/appointments/"), 401, "not_authenticated")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    assert_error(bad.get(f"{API}/appointments/"), 401, "not_authenticated")


def test_a_token_comes_from_username_and_password_or_the_command(frontdesk_user, capsys):
    response = APIClient().post(
        f"{API}/auth/token/", {"username": "fran", "password": "pw-desk-123"}, format="json"
    )
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get(f"{API}/appointments/").status_code == 200
    assert_error(
        APIClient().post(f"{API}/auth/token/", {"username": "fran", "password": "x"}, format="json"),
        400,
        "invalid_credentials",
    )
    call_command("issue_api_token", "fran")
    printed = capsys.readouterr().out.strip()
    client.credentials(HTTP_AUTHORIZATION=f"Token {printed}")
    assert client.get(f"{API}/therapists/").status_code == 200


def test_booking_returns_201_with_etag_and_a_clash_409_with_ids(desk, therapist_a):
    first = desk.post(f"{API}/appointments/", booking(therapist_a), format="json")
    assert first.status_code == 201
    body = first.json()
    assert body["start"] == "2026-12-07T15:00:00Z" and body["start_local"] == "2026-12-07T10:00:00-05:00"
    assert first["ETag"] == f'"{body["id"]}-v1"'
    clash = desk.post(
        f"{API}/appointments/", booking(therapist_a, SLOT + timedelta(minutes=10)), format="json"
    )
    assert_error(clash, 409, "conflict")
    assert clash.json()["error"]["details"] == {"conflicting_appointment_ids": [body["id"]]}


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"start": "2026-12-07T10:00:00", "end": "2026-12-07T11:00:00+00:00"}, "Include a UTC offset"),
        ({"start": "2026-12-07T11:00:00Z", "end": "2026-12-07T10:00:00Z"}, "must be before end"),
        ({"start": "tomorrow", "end": "2026-12-07T10:00:00Z"}, "ISO 8601"),
        ({"start": "2026-12-07T12:99:00Z"}, "ISO 8601"),
        ({"therapist": "abc"}, "therapist"),
        ({"therapist": True}, "Must be an integer"),
        ({"patient_ref": 12}, "Must be a string"),
        ({"therapist": 999999}, "Unknown therapist 999999"),
        ({"service": 424242}, "Unknown service 424242"),
        ({"type": "surgery"}, "type"),
        ({"start": "2026-12-07T10:00:00Z", "end": "2026-12-09T10:00:00Z"}, "longer than"),
    ],
)
def test_bad_booking_input_is_a_clear_400_and_writes_nothing(desk, therapist_a, payload, text):
    body = {**booking(therapist_a), **payload}
    assert_error(desk.post(f"{API}/appointments/", body, format="json"), 400, "invalid", text)
    assert not Appointment.objects.exists()


def test_malformed_json_non_object_and_oversized_bodies_are_refused(desk, therapist_a, settings):
    response = desk.post(f"{API}/appointments/", data="{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert_error(
        desk.post(f"{API}/appointments/", data="[1, 2]", content_type="application/json"),
        400,
        "invalid",
        "JSON object",
    )
    big = json.dumps(
        {**booking(therapist_a), "patient_ref": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}
    )
    assert_error(
        desk.post(f"{API}/appointments/", data=big, content_type="application/json"), 413, "too_large"
    )
    assert not Appointment.objects.exists()


def test_idempotency_key_replays_the_first_response_and_refuses_a_different_body(desk, therapist_a):
    headers = {"HTTP_IDEMPOTENCY_KEY": "book-123"}
    first = desk.post(f"{API}/appointments/", booking(therapist_a), format="json", **headers)
    again = desk.post(f"{API}/appointments/", booking(therapist_a), format="json", **headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Appointment.objects.count() == 1
    other = desk.post(
        f"{API}/appointments/", booking(therapist_a, SLOT + timedelta(hours=2)), format="json", **headers
    )
    assert_error(other, 422, "idempotency_key_reused")
    assert Appointment.objects.count() == 1


def test_a_refused_request_does_not_burn_its_idempotency_key(desk, therapist_a):
    headers = {"HTTP_IDEMPOTENCY_KEY": "retry-me"}
    blocker = desk.post(f"{API}/appointments/", booking(therapist_a), format="json").json()
    assert (
        desk.post(f"{API}/appointments/", booking(therapist_a), format="json", **headers).status_code == 409
    )
    desk.post(f"{API}/appointments/{blocker['id']}/cancel/", {}, format="json")
    assert (
        desk.post(f"{API}/appointments/", booking(therapist_a), format="json", **headers).status_code == 201
    )


def test_patch_reschedules_with_if_match_and_a_stale_etag_is_412(desk, therapist_a):
    created = desk.post(f"{API}/appointments/", booking(therapist_a), format="json")
    url = f"{API}/appointments/{created.json()['id']}/"
    moved = desk.patch(
        url, {"start": (SLOT + timedelta(hours=1)).isoformat()}, format="json", HTTP_IF_MATCH=created["ETag"]
    )
    assert moved.status_code == 200 and moved.json()["end"] == "2026-12-07T16:50:00Z"
    assert moved["ETag"].endswith('-v2"')
    stale = desk.patch(url, {"type": "follow_up"}, format="json", HTTP_IF_MATCH=created["ETag"])
    assert_error(stale, 412, "stale_version")
    assert (
        desk.patch(url, {"type": "follow_up"}, format="json", HTTP_IF_MATCH=moved["ETag"]).json()["type"]
        == "follow_up"
    )


def test_cancel_and_status_endpoints_go_through_the_services(desk, therapist_a, frontdesk_user):
    appt = desk.post(f"{API}/appointments/", booking(therapist_a), format="json").json()
    confirmed = desk.post(f"{API}/appointments/{appt['id']}/status/", {"status": "confirmed"}, format="json")
    assert confirmed.json()["status"] == "confirmed"
    cancelled = desk.post(
        f"{API}/appointments/{appt['id']}/cancel/", {"reason": "patient ill"}, format="json"
    )
    assert cancelled.json()["status"] == "cancelled"
    assert_error(
        desk.post(f"{API}/appointments/{appt['id']}/status/", {"status": "completed"}, format="json"),
        400,
        "invalid",
        "Cannot change a cancelled appointment",
    )
    actions = AuditLog.objects.filter(actor=frontdesk_user, target_id=str(appt["id"])).values_list(
        "action", flat=True
    )
    assert {"scheduler.appointment.status_changed", "scheduler.appointment.cancelled"} <= set(actions)


def test_a_therapist_sees_only_their_own_and_others_are_404(therapist_a, therapist_b, frontdesk_user):
    desk = client_for(frontdesk_user)
    mine = desk.post(f"{API}/appointments/", booking(therapist_a), format="json").json()
    theirs = desk.post(f"{API}/appointments/", booking(therapist_b), format="json").json()
    thea = client_for(therapist_a.user)
    listed = thea.get(f"{API}/appointments/").json()
    assert [a["id"] for a in listed["results"]] == [mine["id"]]
    assert_error(thea.get(f"{API}/appointments/{theirs['id']}/"), 404, "not_found")
    assert_error(thea.get(f"{API}/therapists/{therapist_b.pk}/"), 404, "not_found")
    assert_error(
        thea.patch(f"{API}/appointments/{mine['id']}/", {"type": "admin"}, format="json"), 403, "forbidden"
    )
    assert_error(
        thea.post(f"{API}/appointments/", booking(therapist_a, SLOT + timedelta(hours=3)), format="json"),
        403,
        "forbidden",
    )
    assert [t["id"] for t in thea.get(f"{API}/therapists/").json()["results"]] == [therapist_a.pk]


def test_list_filters_by_range_therapist_source_and_status_and_paginates(desk, therapist_a, therapist_b):
    for i in range(3):
        desk.post(f"{API}/appointments/", booking(therapist_a, SLOT + timedelta(days=i)), format="json")
    desk.post(f"{API}/appointments/", booking(therapist_b), format="json")
    day_two = {"start": (SLOT + timedelta(days=1)).isoformat(), "end": (SLOT + timedelta(days=2)).isoformat()}
    assert desk.get(f"{API}/appointments/", day_two).json()["count"] == 1
    assert desk.get(f"{API}/appointments/", {"therapist": therapist_a.pk}).json()["count"] == 3
    assert desk.get(f"{API}/appointments/", {"source_system": "zocdoc"}).json()["count"] == 0
    page = desk.get(f"{API}/appointments/", {"limit": 2}).json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert_error(desk.get(f"{API}/appointments/", {"status": "lost"}), 400, "invalid", "unknown value")
    assert_error(
        desk.get(f"{API}/appointments/", {"start": "2026-12-07T10:00:00"}), 400, "invalid", "UTC offset"
    )


def test_calendar_returns_appointments_busy_blocks_and_conflict_markers(desk, therapist_a, frontdesk_user):
    hub = desk.post(f"{API}/appointments/", booking(therapist_a), format="json").json()
    conn = Connection.objects.create(platform="zocdoc", display_name="Z")
    ext, _ = external_appointment_upsert(
        connection=conn,
        external_id="z9",
        therapist_id=therapist_a.pk,
        start=SLOT + timedelta(minutes=20),
        end=SLOT + timedelta(minutes=40),
    )
    BusyBlock.objects.create(
        therapist=therapist_a,
        start=SLOT + timedelta(hours=3),
        end=SLOT + timedelta(hours=4),
        source_system="google",
    )
    week = {"start": "2026-12-07T00:00:00-05:00", "end": "2026-12-14T00:00:00-05:00"}
    body = desk.get(f"{API}/calendar/", week).json()
    assert {a["id"] for a in body["appointments"]} == {hub["id"], ext.pk}
    assert len(body["busy_blocks"]) == 1 and body["therapists"] == [
        {"id": therapist_a.pk, "timezone": "America/New_York"}
    ]
    [marker] = [c for c in body["conflicts"] if c["kind"] == "overlap"]
    assert sorted(marker["appointment_ids"]) == sorted([hub["id"], ext.pk])
    assert (
        desk.get(f"{API}/calendar/", {**week, "source_system": "hub"}).json()["appointments"][0]["id"]
        == hub["id"]
    )
    assert_error(
        desk.get(f"{API}/calendar/", {"start": week["start"], "end": "2027-06-01T00:00:00Z"}),
        400,
        "invalid",
        "at most 62 days",
    )
    assert_error(desk.get(f"{API}/calendar/", {"end": week["end"]}), 400, "invalid", "'start' is required")


def test_conflicts_are_listed_filtered_and_resolved(desk, admin_user, therapist_a, frontdesk_user):
    admin = client_for(admin_user)
    first = admin.post(f"{API}/appointments/", booking(therapist_a), format="json").json()
    admin.post(f"{API}/appointments/", booking(therapist_a, override_reason="urgent"), format="json")
    listed = desk.get(f"{API}/conflicts/", {"status": "open", "kind": "overlap"}).json()
    [conflict] = listed["results"]
    assert first["id"] in conflict["appointment_ids"]
    assert_error(
        desk.post(f"{API}/conflicts/{conflict['id']}/resolve/", {"action": "accept"}, format="json"),
        400,
        "invalid",
        "needs a reason",
    )
    resolved = desk.post(
        f"{API}/conflicts/{conflict['id']}/resolve/",
        {"action": "cancel", "appointment": first["id"]},
        format="json",
    )
    assert resolved.status_code == 200 and resolved.json()["resolution"] == "cancel"
    assert Conflict.objects.get(pk=conflict["id"]).resolved_by == frontdesk_user


def test_the_audit_log_is_for_admins_only(desk, admin_user):
    assert_error(desk.get(f"{API}/audit/"), 403, "forbidden")
    rows = client_for(admin_user).get(f"{API}/audit/").json()["results"]
    assert rows and rows[0]["action"] == "accounts.api_token.issued"


@pytest.mark.dbspecific
def test_audit_filters_are_validated_and_a_nul_byte_is_a_400_not_a_500(admin_user):
    admin = client_for(admin_user)
    assert admin.get(f"{API}/audit/", {"action": "accounts.api_token.issued"}).json()["count"] == 1
    assert_error(admin.get(f"{API}/audit/", {"action": "a\x00b"}), 400, "invalid")


def test_ical_export_is_phi_free_with_a_vtimezone(desk, therapist_a, frontdesk_user):
    from scheduler.services import patient_create

    patient = patient_create(actor=frontdesk_user, name="Iris Icalson")
    appt = desk.post(
        f"{API}/appointments/", booking(therapist_a, patient_ref=patient.ref), format="json"
    ).json()
    response = desk.get(f"{API}/appointments/{appt['id']}/ical")
    text = response.content.decode()
    assert response["Content-Type"].startswith("text/calendar")
    assert "BEGIN:VTIMEZONE" in text and "DTSTART;TZID=America/New_York:20261207T100000" in text
    assert "Iris" not in text and patient.ref not in text and f"UID:{appt['uid']}@clinic-hub" in text


def test_throttling_answers_429_with_retry_after(desk, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import UserRateThrottle

    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    codes = [desk.get(f"{API}/therapists/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = desk.get(f"{API}/therapists/")
    assert_error(limited, 429, "throttled")
    assert int(limited["Retry-After"]) > 0
    cache.clear()


def test_schema_and_docs_are_served(desk):
    schema = desk.get(f"{API}/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and "/api/v1/appointments/" in schema.content.decode()
    assert desk.get(f"{API}/docs/").status_code == 200


def test_free_slots_respect_hours_appointments_buffers_and_busy_blocks(desk, therapist_a, session_service):
    # 50-minute sessions with 10 minutes after; hours 09:00-17:00 New York.
    desk.post(
        f"{API}/appointments/", booking(therapist_a, service=session_service.pk), format="json"
    )  # 10:00
    BusyBlock.objects.create(
        therapist=therapist_a,
        start=SLOT + timedelta(hours=3),
        end=SLOT + timedelta(hours=4),
        source_system="google",
    )  # 13:00-14:00
    day = {
        "start": "2026-12-07T00:00:00-05:00",
        "end": "2026-12-08T00:00:00-05:00",
        "service": session_service.pk,
    }
    body = desk.get(f"{API}/therapists/{therapist_a.pk}/free-slots/", day).json()
    starts = [s["start_local"][11:16] for s in body["slots"]]
    assert body["duration_minutes"] == 50 and body["timezone"] == "America/New_York"
    assert starts[0] == "09:00" and "09:15" not in starts  # 09:15-10:05 (+10) runs into the 10:00 booking
    assert "09:00" in starts and "10:00" not in starts and "11:00" in starts and "10:45" not in starts
    assert "12:00" in starts and "12:15" not in starts  # 12:00-12:50 +10 touches the 13:00 busy block
    assert "13:00" not in starts and "14:00" in starts  # busy 13:00-14:00
    assert starts[-1] == "16:00" and "16:15" not in starts  # 16:15 would end 17:05
    assert body["slots"][0]["start"] == "2026-12-07T14:00:00+00:00"
    assert_error(
        desk.get(f"{API}/therapists/{therapist_a.pk}/free-slots/", {**day, "duration": 45}),
        400,
        "invalid",
        "duration must be one of",
    )
    assert_error(
        desk.get(f"{API}/therapists/{therapist_a.pk}/free-slots/", {**day, "service": ""}),
        400,
        "invalid",
        "exactly one service",
    )


def test_patients_are_created_and_read_by_staff_only_and_reads_are_audited(desk, therapist_a, frontdesk_user):
    created = desk.post(
        f"{API}/patients/", {"name": "Ada Apiton", "date_of_birth": "1980-02-03"}, format="json"
    )
    assert created.status_code == 201
    ref = created.json()["ref"]
    assert desk.get(f"{API}/patients/{ref}/").json()["name"] == "Ada Apiton"
    assert AuditLog.objects.filter(action="scheduler.patient.viewed", actor=frontdesk_user).count() == 1
    thea = client_for(therapist_a.user)
    assert_error(thea.get(f"{API}/patients/{ref}/"), 403, "forbidden")
    assert_error(thea.post(f"{API}/patients/", {"name": "X"}, format="json"), 403, "forbidden")
    assert_error(
        desk.post(f"{API}/patients/", {"name": "Bo", "date_of_birth": "03/02/1980"}, format="json"),
        400,
        "invalid",
        "YYYY-MM-DD",
    )
    assert_error(desk.get(f"{API}/patients/pt_missing/"), 404, "not_found")


def test_time_off_through_the_api_opens_outside_hours_conflicts(desk, therapist_a):
    appt = desk.post(f"{API}/appointments/", booking(therapist_a), format="json").json()
    response = desk.post(
        f"{API}/therapists/{therapist_a.pk}/time-off/",
        {"start": "2026-12-07T00:00:00-05:00", "end": "2026-12-08T00:00:00-05:00", "reason": "conference"},
        format="json",
    )
    assert response.status_code == 201
    conflict = desk.get(f"{API}/conflicts/", {"kind": "outside_hours"}).json()["results"][0]
    assert conflict["appointment_ids"] == [appt["id"]]


def test_services_and_offices_are_listed_for_the_booking_dialog_and_filters(desk, therapist_a, db):
    from scheduler.models import Office, Service

    Service.objects.create(name="Intake", durations=[60, 90], buffer_before_minutes=5)
    Service.objects.create(name="Retired", durations=[30], active=False)
    Office.objects.create(name="Main Street", timezone="America/New_York")
    services = desk.get(f"{API}/services/").json()["results"]
    assert services == [
        {
            "id": services[0]["id"],
            "name": "Intake",
            "durations": [60, 90],
            "buffer_before_minutes": 5,
            "buffer_after_minutes": 0,
        }
    ]
    offices = desk.get(f"{API}/offices/").json()["results"]
    assert [(o["name"], o["timezone"]) for o in offices] == [("Main Street", "America/New_York")]
    therapist = client_for(therapist_a.user)  # names and durations only: a therapist may read them too
    assert therapist.get(f"{API}/services/").json()["count"] == 1
    assert_error(APIClient().get(f"{API}/offices/"), 401, "not_authenticated")
