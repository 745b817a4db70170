"""POST /api/v1/imports/ics and GET /api/v1/imports/{id}; the admin upload page; the background job."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from scheduler.models import Appointment, IcsImport

GOOGLE = (Path(__file__).parent / "fixtures" / "google.ics").read_bytes()
API = "/api/v1"


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = api_token_issue(actor=None, user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def upload(client, therapist, data=GOOGLE, key=None, **extra):
    body = {
        "file": SimpleUploadedFile("cal.ics", data, content_type="text/calendar"),
        "therapist": getattr(therapist, "pk", therapist),
        "window_start": "2026-10-01",
        "window_end": "2026-12-31",
        **extra,
    }
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"{API}/imports/ics", body, format="multipart", **headers)


def test_a_small_file_is_imported_in_the_request(frontdesk_user, therapist_a):
    desk = client_for(frontdesk_user)
    response = upload(desk, therapist_a)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "done" and body["progress"] == 100 and body["counts"]["created"] == 7
    assert response["Location"] == body["url"] == f"{API}/imports/{body['id']}"
    assert desk.get(body["url"]).json()["counts"]["unchanged"] == 0
    assert IcsImport.objects.get().data == ""  # the file is not kept
    again = upload(desk, therapist_a).json()
    assert again["counts"]["unchanged"] == 7 and again["counts"]["created"] == 0


def test_a_malformed_file_answers_400_with_the_line_and_imports_nothing(frontdesk_user, therapist_a):
    broken = GOOGLE.replace(
        b"END:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART:20261021", b"BEGIN:VEVENT\r\nDTSTART:20261021"
    )
    response = upload(client_for(frontdesk_user), therapist_a, data=broken)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "BEGIN:VEVENT" in error["message"]
    assert error["details"]["line"] > 0 and error["message"].startswith("The .ics file was refused: line ")
    assert not Appointment.objects.exists()
    job = IcsImport.objects.get()
    assert job.status == "failed" and job.data == ""


def test_a_large_file_runs_in_the_background_with_progress(
    frontdesk_user, therapist_a, settings, django_capture_on_commit_callbacks
):
    settings.ICS_IMPORT_BACKGROUND_BYTES = 100
    desk = client_for(frontdesk_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(desk, therapist_a)
    assert response.status_code == 202
    queued = response.json()
    assert queued["status"] == "queued" and queued["progress"] == 0
    assert not Appointment.objects.exists()  # nothing inside the request
    for callback in callbacks:
        callback()  # the worker (eager in tests)
    done = desk.get(response["Location"]).json()
    assert done["status"] == "done" and done["progress"] == 100 and done["counts"]["created"] == 7


def test_who_may_import(therapist_a, therapist_b, outsider, frontdesk_user, settings):
    assert upload(client_for(therapist_a.user), therapist_a).status_code == 403
    assert upload(client_for(outsider), therapist_a).status_code == 403
    assert upload(client_for(frontdesk_user), 999).status_code == 400
    settings.ICS_IMPORT_MAX_BYTES = 1000
    too_big = upload(client_for(frontdesk_user), therapist_a)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
    assert not IcsImport.objects.exists()


def test_a_therapist_sees_only_imports_into_their_own_calendar(frontdesk_user, therapist_a, therapist_b):
    url = upload(client_for(frontdesk_user), therapist_a).json()["url"]
    assert client_for(therapist_a.user).get(url).status_code == 200
    assert client_for(therapist_b.user).get(url).status_code == 404


def test_the_admin_uploads_and_shows_the_result(client, frontdesk_user, therapist_a):
    client.force_login(frontdesk_user)
    response = client.post(
        reverse("admin:scheduler_icsimport_add"),
        {
            "therapist": therapist_a.pk,
            "file": SimpleUploadedFile("cal.ics", GOOGLE),
            "first_day": "2026-10-01",
            "last_day": "2026-12-31",
        },
        follow=True,
    )
    assert response.status_code == 200
    job = IcsImport.objects.get()
    assert job.status == "done" and Appointment.objects.count() == 6
    page = client.get(reverse("admin:scheduler_icsimport_change", args=[job.pk])).content.decode()
    assert "100% (done)" in page and "created 7" in page


def test_a_retried_upload_with_the_same_idempotency_key_replays_and_another_file_is_refused(
    frontdesk_user, therapist_a
):
    desk = client_for(frontdesk_user)
    first = upload(desk, therapist_a, key="upload-1")
    replay = upload(desk, therapist_a, key="upload-1")
    assert first.status_code == replay.status_code == 201 and first.json() == replay.json()
    assert IcsImport.objects.count() == 1  # the retry imported nothing again
    other = upload(desk, therapist_a, data=GOOGLE.replace(b"SUMMARY:", b"SUMMARY:x"), key="upload-1")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
