"""Idempotency keys live 24 hours, as Stripe's do: replayed within, a new request after, purged by beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from accounts.models import IdempotencyKey
from accounts.services import idempotency_keys_purge
from accounts.tasks import idempotency_keys_purge_task
from audit.models import AuditLog
from scheduler.models import Patient
from tests.test_api import API, client_for

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_a_key_replays_within_24_hours_and_is_a_new_request_after(frontdesk_user):
    desk = client_for(frontdesk_user)
    with time_machine.travel(T0, tick=False):
        first = desk.post(f"{API}/patients/", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    with time_machine.travel(T0 + timedelta(hours=23), tick=False):
        again = desk.post(f"{API}/patients/", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert Patient.objects.count() == 1
    with time_machine.travel(T0 + timedelta(hours=25), tick=False):
        later = desk.post(f"{API}/patients/", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert later.status_code == 201 and "Idempotent-Replayed" not in later
    assert later.json()["ref"] != first.json()["ref"]
    assert Patient.objects.count() == 2


def test_the_purge_deletes_only_expired_keys_and_audits_it(frontdesk_user):
    desk = client_for(frontdesk_user)
    with time_machine.travel(T0, tick=False):
        desk.post(f"{API}/patients/", {"name": "Old"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    with time_machine.travel(T0 + timedelta(hours=20), tick=False):
        desk.post(f"{API}/patients/", {"name": "New"}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    with time_machine.travel(T0 + timedelta(hours=25), tick=False):
        assert idempotency_keys_purge() == 1
        assert idempotency_keys_purge_task.delay().get() == 0
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert AuditLog.objects.filter(action="accounts.idempotency_key.purged", details__count=1).exists()


def test_the_stored_replay_body_is_ciphertext_and_round_trips(frontdesk_user):
    from django.db import connection

    desk = client_for(frontdesk_user)
    first = desk.post(f"{API}/patients/", {"name": "Secret Name"}, format="json", HTTP_IDEMPOTENCY_KEY="c")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM accounts_idempotencykey")
        (raw,) = cursor.fetchone()
    assert "Secret Name" not in raw and raw.startswith("gAAAA")  # a Fernet token
    assert IdempotencyKey.objects.get().body == first.json()
