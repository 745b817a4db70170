"""The write queue's drain: claims, rate budget, backoff with jitter, dead jobs, retries, and no double send
(deterministic event ids), against a recording calendar over real HTTP."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditLog
from integrations.base import deterministic_event_id
from integrations.models import APIWriteQueue, Connection, ExternalRecord
from integrations.services import (
    WRITE_MAX_ATTEMPTS,
    write_backoff,
    write_jobs_retry,
    write_queue_drain,
)
from integrations.tests.sink import Sink, serve
from scheduler.models import Appointment
from scheduler.services import appointment_book, appointment_cancel, appointment_reschedule, patient_create

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 10:00 in New York, a Monday


@pytest.fixture
def sink(settings):
    settings.CONNECTOR_OVERRIDES = {"outlook": "integrations.tests.sink.SinkConnector"}
    sink = Sink()
    server, url = serve(sink)
    sink.url = url
    yield sink
    server.shutdown()
    server.server_close()


@pytest.fixture
def calendar(sink, therapist_a):
    return Connection.objects.create(
        platform="outlook",
        display_name="Outlook",
        therapist=therapist_a,
        write_enabled=True,
        credentials={"base_url": sink.url, "timeout": 0.5},
    )


def book(actor, therapist, hours: int = 0) -> Appointment:
    start = SLOT + timedelta(hours=hours)
    patient = patient_create(actor=None, name="Jane Roe", email="jane@example.org")
    return appointment_book(
        actor=actor,
        therapist=therapist,
        start=start,
        end=start + timedelta(minutes=50),
        patient_ref=patient.ref,
    )


def due_now() -> None:
    APIWriteQueue.objects.exclude(status__in=["done", "dead"]).update(next_attempt_at=timezone.now())


def test_a_booking_is_sent_once_phi_free_and_the_ledger_learns_its_event(
    sink, calendar, therapist_a, frontdesk_user
):
    appointment = book(frontdesk_user, therapist_a)
    job = APIWriteQueue.objects.get()
    assert job.status == "pending" and job.operation == "create"
    counts = write_queue_drain()
    assert (counts.sent, counts.retrying, counts.dead) == (1, 0, 0)
    eid = deterministic_event_id(str(appointment.uid))
    assert sink.created() == {eid: 1}
    assert (
        appointment.patient_ref not in str(sink.events[eid])
        and "Roe" not in str(sink.events[eid])
        and sink.events[eid]["title"] == "Appointment"
    )
    job.refresh_from_db()
    assert (job.status, job.external_id, job.attempts, job.claimed_until) == ("done", eid, 1, None)
    assert ExternalRecord.objects.get(connection=calendar, external_id=eid).appointment == appointment
    assert AuditLog.objects.filter(action="integrations.write.sent").count() == 1
    assert write_queue_drain().sent == 0  # nothing is sent twice


def test_a_timeout_after_the_platform_accepted_does_not_create_a_second_event(
    sink, calendar, therapist_a, frontdesk_user
):
    appointment = book(frontdesk_user, therapist_a)
    sink.fault("timeout_after_accept", seconds=1.5)
    counts = write_queue_drain()
    assert (counts.sent, counts.retrying) == (0, 1)
    job = APIWriteQueue.objects.get()
    assert job.status == "failed" and job.next_attempt_at > timezone.now() and "timed out" in job.last_error
    due_now()
    assert write_queue_drain().sent == 1
    eid = deterministic_event_id(str(appointment.uid))
    assert sink.created() == {eid: 1} and len(sink.events) == 1
    assert [status for method, _, status in sink.log] == [201, 412, 204]


def test_an_update_waits_for_its_create_and_a_cancel_deletes(sink, calendar, therapist_a, frontdesk_user):
    appointment = book(frontdesk_user, therapist_a)
    sink.fault("server_error")
    assert write_queue_drain().retrying == 1
    appointment = appointment_reschedule(
        actor=frontdesk_user, appointment=appointment, start=SLOT + timedelta(hours=2)
    )
    # The create is backing off: its update must not overtake it.
    assert write_queue_drain().sent == 0
    assert APIWriteQueue.objects.get(operation="update").attempts == 0
    due_now()
    assert write_queue_drain().sent == 2
    eid = deterministic_event_id(str(appointment.uid))
    assert sink.events[eid]["start"] == (SLOT + timedelta(hours=2)).isoformat()
    appointment_cancel(actor=frontdesk_user, appointment=appointment)
    assert write_queue_drain().sent == 1
    assert eid not in sink.events
    assert ExternalRecord.objects.get(external_id=eid).tombstone_reason == "deleted by the hub"


def test_a_rate_limit_honours_retry_after_and_holds_the_rest_of_the_batch(
    sink, calendar, therapist_a, frontdesk_user
):
    for n in range(3):
        book(frontdesk_user, therapist_a, hours=n)
    sink.fault("rate_limit", retry_after=120)
    before = timezone.now()
    counts = write_queue_drain()
    assert (counts.sent, counts.retrying, counts.waiting) == (0, 1, 2)
    jobs = list(APIWriteQueue.objects.order_by("pk"))
    assert all(j.next_attempt_at >= before + timedelta(seconds=120) for j in jobs)
    assert [j.attempts for j in jobs] == [1, 0, 0]  # the held ones were never tried
    assert write_queue_drain().sent == 0  # nothing is due before Retry-After
    due_now()
    assert write_queue_drain().sent == 3 and len(sink.events) == 3


def test_the_per_connection_budget_caps_sends_per_minute(sink, calendar, therapist_a, frontdesk_user):
    calendar.config = {"write_rate_per_minute": 3}
    calendar.save()
    for n in range(5):
        book(frontdesk_user, therapist_a, hours=n)
    assert write_queue_drain(batch_size=2).sent == 3
    assert APIWriteQueue.objects.filter(status="pending").count() == 2
    # A minute later the budget is back.
    APIWriteQueue.objects.update(last_attempt_at=timezone.now() - timedelta(minutes=2))
    assert write_queue_drain().sent == 2


def test_a_permanent_failure_is_dead_shown_on_the_appointment_and_can_be_retried(
    sink, calendar, therapist_a, frontdesk_user, admin_user, client
):
    appointment = book(frontdesk_user, therapist_a)
    sink.fault("bad_request")
    assert write_queue_drain().dead == 1
    job = APIWriteQueue.objects.get()
    assert job.status == "dead" and "400" in job.last_error
    client.force_login(admin_user)
    page = client.get(f"/admin/scheduler/appointment/{appointment.pk}/change/").content.decode()
    assert "Dead (gave up)" in page and job.last_error.split(":")[0] in page
    assert write_jobs_retry(actor=admin_user, jobs=APIWriteQueue.objects.all()) == 1
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)
    assert AuditLog.objects.filter(action="integrations.write.retry_requested").exists()
    assert write_queue_drain().sent == 1


def test_the_admin_retry_action_sends_a_dead_job_again(sink, calendar, therapist_a, frontdesk_user, client):
    book(frontdesk_user, therapist_a)
    sink.fault("bad_request")
    write_queue_drain()
    job = APIWriteQueue.objects.get()
    client.force_login(frontdesk_user)
    response = client.post(
        "/admin/integrations/apiwritequeue/",
        {"action": "retry", "_selected_action": [job.pk]},
        follow=True,
    )
    assert response.status_code == 200 and "1 job" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "pending"


def test_retryable_failures_give_up_after_the_last_attempt(sink, calendar, therapist_a, frontdesk_user):
    book(frontdesk_user, therapist_a)
    for _ in range(WRITE_MAX_ATTEMPTS):
        sink.fault("server_error")
        due_now()
        write_queue_drain()
    job = APIWriteQueue.objects.get()
    assert job.status == "dead" and job.last_error.startswith(f"gave up after {WRITE_MAX_ATTEMPTS} attempts")


def test_refused_credentials_mark_needs_reauth_and_the_queue_waits(
    sink, calendar, therapist_a, frontdesk_user
):
    book(frontdesk_user, therapist_a)
    book(frontdesk_user, therapist_a, hours=2)
    sink.fault("unauthorized")
    counts = write_queue_drain()
    assert (counts.sent, counts.waiting) == (0, 2)
    calendar.refresh_from_db()
    assert calendar.status == "needs_reauth"
    assert list(APIWriteQueue.objects.values_list("status", "attempts")) == [("pending", 0)] * 2
    assert write_queue_drain().sent == 0 and len(sink.log) == 1  # nothing goes out until re-authorised
    calendar.status = "ok"
    calendar.save()
    assert write_queue_drain().sent == 2


def test_a_job_whose_worker_died_is_taken_over_after_its_lease(sink, calendar, therapist_a, frontdesk_user):
    book(frontdesk_user, therapist_a)
    # A worker claimed it, sent it (the platform has it) and died before recording the outcome.
    APIWriteQueue.objects.update(
        status="in_flight", claimed_until=timezone.now() + timedelta(minutes=5), attempts=1
    )
    assert write_queue_drain().sent == 0  # still leased
    APIWriteQueue.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert write_queue_drain().sent == 1
    assert APIWriteQueue.objects.get().attempts == 2


def test_a_paused_connection_sends_nothing(sink, calendar, therapist_a, frontdesk_user):
    book(frontdesk_user, therapist_a)
    calendar.status = "paused"
    calendar.save()
    assert write_queue_drain().sent == 0 and not sink.log


def test_drain_write_queue_command_prints_what_it_did(sink, calendar, therapist_a, frontdesk_user, capsys):
    book(frontdesk_user, therapist_a)
    call_command("drain_write_queue")
    assert "sent 1, retrying 0, dead 0, waiting 0" in capsys.readouterr().out


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    rng = random.Random(7)
    delays = [write_backoff(n, None, rng).total_seconds() for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(3600.0, 30.0 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(write_backoff(3, None, rng).total_seconds(), 3) for _ in range(20)}) > 10  # jittered
    assert 120 <= write_backoff(1, 120, rng).total_seconds() <= 133
