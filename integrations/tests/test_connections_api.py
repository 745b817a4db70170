"""Connections over REST and webhooks: status only, never credentials; signed webhooks start a sync."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from integrations.models import Connection, WebhookDelivery
from integrations.zocdoc.emulator import ZocdocEmulator

API = "/api/v1"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(actor=None, user=user)[0]}")
    return client


@pytest.fixture
def zocdoc(therapist_a):
    emulator = ZocdocEmulator({"client_id": "hub", "client_secret": "s3cret"})
    conn = Connection.objects.create(
        platform="zocdoc",
        display_name="Zocdoc",
        credentials={"client_id": "hub", "client_secret": "s3cret", "webhook_key": emulator.webhook_key},
        config={"provider_map": {}},
    )
    return conn, emulator


def test_connections_show_status_and_never_credentials(frontdesk_user, zocdoc):
    conn, _ = zocdoc
    body = client_for(frontdesk_user).get(f"{API}/connections/{conn.pk}/").json()
    assert body["status"] == "ok" and body["platform"] == "zocdoc"
    assert "credentials" not in body and "s3cret" not in str(body) and "cursor" not in body


def test_only_those_allowed_may_start_a_sync_and_others_see_404(
    frontdesk_user, admin_user, therapist_a, zocdoc, django_capture_on_commit_callbacks
):
    conn, _ = zocdoc
    assert client_for(frontdesk_user).post(f"{API}/connections/{conn.pk}/sync/").status_code == 403
    assert client_for(therapist_a.user).get(f"{API}/connections/{conn.pk}/").status_code == 404
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(admin_user).post(f"{API}/connections/{conn.pk}/sync/")
    assert response.status_code == 202 and len(callbacks) == 1


def test_a_signed_webhook_starts_one_sync_and_a_redelivery_is_ignored(
    client, zocdoc, django_capture_on_commit_callbacks
):
    conn, emulator = zocdoc
    body, headers = emulator.webhook_request("appt-1", "updated")
    extra = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"
    }
    with django_capture_on_commit_callbacks() as callbacks:
        first = client.post("/webhooks/zocdoc/", body, content_type="application/json", **extra)
        again = client.post("/webhooks/zocdoc/", body, content_type="application/json", **extra)
    assert (first.json(), again.json()) == ({"status": "accepted"}, {"status": "duplicate"})
    assert len(callbacks) == 1 and WebhookDelivery.objects.get().event_ids == ["appt-1"]


def test_a_webhook_with_a_bad_signature_is_refused_before_parsing(client, zocdoc):
    conn, emulator = zocdoc
    body, headers = emulator.webhook_request("appt-1", "updated")
    extra = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"
    }
    tampered = body.replace(b"appt-1", b"appt-2")
    assert (
        client.post("/webhooks/zocdoc/", tampered, content_type="application/json", **extra).status_code
        == 403
    )
    assert client.post("/webhooks/nosuch/", body, content_type="application/json").status_code == 404
    assert not WebhookDelivery.objects.exists()


def test_a_burst_of_webhooks_queues_one_sync_and_a_later_one_queues_another(
    client, zocdoc, django_capture_on_commit_callbacks
):
    from integrations.services import connection_sync

    conn, emulator = zocdoc

    def deliver(appointment_id):
        body, headers = emulator.webhook_request(appointment_id, "updated")
        extra = {
            f"HTTP_{k.upper().replace('-', '_')}": v
            for k, v in headers.items()
            if k.lower() != "content-type"
        }
        return client.post("/webhooks/zocdoc/", body, content_type="application/json", **extra)

    with django_capture_on_commit_callbacks() as callbacks:
        for n in range(5):
            assert deliver(f"appt-{n}").json() == {"status": "accepted"}
    assert len(callbacks) == 1  # the pending sync serves the whole burst
    conn.refresh_from_db()
    assert conn.sync_requested_at is not None
    connection_sync(connection_id=conn.pk)  # the queued sync starts: requests from now on queue anew
    conn.refresh_from_db()
    assert conn.sync_requested_at is None
    with django_capture_on_commit_callbacks() as callbacks:
        deliver("appt-9")
    assert len(callbacks) == 1
