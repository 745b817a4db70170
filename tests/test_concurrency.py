"""Double booking is impossible under concurrency: 20 requests race for one slot, each on its own
database connection; exactly one wins, the rest get a clean BookingConflict, nothing half-written."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connections, transaction

from audit.models import AuditLog
from audit.selectors import audit_chain_verify
from lib.errors import BookingConflict
from scheduler import services
from scheduler.models import Appointment, SourceSystem

pytestmark = [pytest.mark.dbspecific, pytest.mark.django_db(transaction=True)]

N = 20
SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 10:00 in New York


def race(n: int, fn: Callable[[int], Any]) -> list[tuple[str, Any]]:
    barrier = threading.Barrier(n)
    results: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcome: tuple[str, Any] = ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted on below
            outcome = ("error", exc)
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == n, "a racer hung"
    return results


def assert_one_winner(results: list[tuple[str, Any]]) -> Any:
    winners = [v for kind, v in results if kind == "ok"]
    errors = [v for kind, v in results if kind == "error"]
    assert len(winners) == 1, errors[:3]
    assert all(isinstance(e, BookingConflict) for e in errors), [repr(e) for e in errors[:3]]
    assert all(e.details["conflicting_appointment_ids"] == [winners[0].pk] for e in errors)
    return winners[0]


def occupying_at_slot() -> int:
    return Appointment.objects.filter(
        status__in=["scheduled", "confirmed"], start__lt=SLOT + timedelta(minutes=50), end__gt=SLOT
    ).count()


def test_concurrent_bookings_of_one_slot_leave_exactly_one(frontdesk_user, therapist_a):
    results = race(
        N,
        lambda i: services.appointment_book(
            actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
        ),
    )
    assert_one_winner(results)
    assert Appointment.objects.count() == 1
    assert AuditLog.objects.filter(action="scheduler.appointment.booked").count() == 1
    assert audit_chain_verify().ok


def test_concurrent_reschedules_into_one_slot_leave_exactly_one(frontdesk_user, therapist_a):
    spread = [
        services.appointment_book(
            actor=frontdesk_user,
            therapist=therapist_a,
            start=SLOT + timedelta(hours=2 + i),
            end=SLOT + timedelta(hours=2 + i, minutes=50),
        )
        for i in range(N)
    ]
    results = race(
        N, lambda i: services.appointment_reschedule(actor=frontdesk_user, appointment=spread[i], start=SLOT)
    )
    winner = assert_one_winner(results)
    assert occupying_at_slot() == 1
    assert Appointment.objects.filter(version=2).get() == winner
    assert AuditLog.objects.filter(action="scheduler.appointment.rescheduled").count() == 1
    assert audit_chain_verify().ok


def test_concurrent_confirms_of_cancelled_appointments_in_one_slot_leave_exactly_one(
    frontdesk_user, therapist_a
):
    cancelled = []
    for _ in range(N):
        a = services.appointment_book(
            actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
        )
        cancelled.append(services.appointment_cancel(actor=frontdesk_user, appointment=a))
    results = race(
        N,
        lambda i: services.appointment_set_status(
            actor=frontdesk_user, appointment=cancelled[i], status="confirmed"
        ),
    )
    assert_one_winner(results)
    assert occupying_at_slot() == 1
    assert Appointment.objects.filter(status="cancelled").count() == N - 1
    assert audit_chain_verify().ok


@pytest.mark.postgres
def test_the_database_refuses_a_double_booking_that_skips_the_service(therapist_a):
    Appointment.objects.create(
        therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50), timezone=therapist_a.timezone
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            therapist=therapist_a,
            start=SLOT + timedelta(minutes=10),
            end=SLOT + timedelta(minutes=20),
            timezone=therapist_a.timezone,
        )
    # Not covered: external facts, cancelled bookings and admin overrides.
    Appointment.objects.create(
        therapist=therapist_a,
        start=SLOT,
        end=SLOT + timedelta(minutes=50),
        timezone=therapist_a.timezone,
        source_system=SourceSystem.ZOCDOC,
        external_id="z1",
    )
    Appointment.objects.create(
        therapist=therapist_a,
        start=SLOT,
        end=SLOT + timedelta(minutes=50),
        timezone=therapist_a.timezone,
        status="cancelled",
    )
    Appointment.objects.create(
        therapist=therapist_a,
        start=SLOT,
        end=SLOT + timedelta(minutes=50),
        timezone=therapist_a.timezone,
        override_reason="agreed",
    )


@pytest.mark.postgres
def test_a_constraint_violation_is_mapped_to_the_same_clear_conflict(
    frontdesk_user, therapist_a, monkeypatch
):
    first = services.appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
    )
    monkeypatch.setattr(services, "_guard", lambda **kwargs: False)  # a path that forgot the check
    with pytest.raises(BookingConflict) as exc:
        services.appointment_book(
            actor=frontdesk_user, therapist=therapist_a, start=SLOT, end=SLOT + timedelta(minutes=50)
        )
    assert exc.value.details == {"conflicting_appointment_ids": [first.pk]}
    assert Appointment.objects.count() == 1
