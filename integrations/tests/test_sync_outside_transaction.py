"""A sync's fetch (HTTP to a platform) runs in no database transaction (issue 12: whoever controls a feed URL
could hang a worker, and on SQLite a transaction holds the one write lock, so a slow platform stalled every
booking). Real threads, real connections, on both databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db_connection
from django.db import connections

from integrations import registry
from integrations.base import Connector, ExternalEvent, FetchResult
from integrations.models import Connection, SyncRun
from integrations.services import connection_sync
from scheduler.models import Appointment
from scheduler.services import appointment_book

pytestmark = [pytest.mark.dbspecific, pytest.mark.django_db(transaction=True)]

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


class SlowConnector(Connector):
    """Blocks in fetch until the test lets it go, recording whether a transaction was open."""

    platform = "zocdoc"
    min_sync_interval = timedelta(minutes=5)
    entered = threading.Event()
    release = threading.Event()
    in_transaction: list[bool] = []

    def fetch(self, *, cursor, window):
        SlowConnector.in_transaction.append(db_connection.in_atomic_block)
        SlowConnector.entered.set()
        assert SlowConnector.release.wait(30), "the test never released the fetch"
        event = ExternalEvent(external_id="z1", start=SLOT, end=SLOT + timedelta(minutes=30), version="1")
        return FetchResult([event], cursor="c1")


@pytest.fixture
def slow(therapist_a, monkeypatch):
    monkeypatch.setitem(registry.CONNECTORS, "zocdoc", f"{__name__}.SlowConnector")
    SlowConnector.entered, SlowConnector.release = threading.Event(), threading.Event()
    SlowConnector.in_transaction = []
    return Connection.objects.create(platform="zocdoc", display_name="Z", therapist=therapist_a)


def _sync_in_thread(connection_id: int, out: list) -> threading.Thread:
    def run() -> None:
        try:
            out.append(connection_sync(connection_id=connection_id))
        except Exception as exc:  # noqa: BLE001 - asserted on below
            out.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_booking_completes_while_a_sync_is_fetching(slow, frontdesk_user, therapist_b):
    out: list = []
    thread = _sync_in_thread(slow.pk, out)
    assert SlowConnector.entered.wait(30)
    try:
        # The platform is "slow": the hub keeps booking meanwhile (was: "database is locked" on SQLite).
        booked = appointment_book(
            actor=frontdesk_user, therapist=therapist_b, start=SLOT, end=SLOT + timedelta(minutes=50)
        )
        assert booked.pk
        assert SlowConnector.in_transaction == [False]
        assert SyncRun.objects.get(connection=slow).status == "running"  # visible to staff meanwhile
    finally:
        SlowConnector.release.set()
        thread.join(60)
    run = out[0]
    assert isinstance(run, SyncRun) and run.status == "ok", out
    assert Appointment.objects.filter(connection=slow, external_id="z1").count() == 1
    slow.refresh_from_db()
    assert (slow.cursor, slow.sync_lease_until) == ("c1", None)


def test_a_second_sync_while_one_fetches_does_not_start_and_asks_for_a_rerun(slow):
    out: list = []
    thread = _sync_in_thread(slow.pk, out)
    assert SlowConnector.entered.wait(30)
    try:
        assert connection_sync(connection_id=slow.pk) is None  # the lease is held
        slow.refresh_from_db()
        assert slow.sync_requested_at is not None and slow.sync_lease_until is not None
    finally:
        SlowConnector.release.set()
        thread.join(60)
    assert out[0].status == "ok"
    # the request left meanwhile got its own run when the first ended (a task; eager in tests)
    assert list(SyncRun.objects.filter(connection=slow).values_list("status", flat=True)) == ["ok", "ok"]
    slow.refresh_from_db()
    assert (slow.sync_requested_at, slow.sync_lease_until) == (None, None)


def test_an_expired_lease_is_taken_over_and_the_late_fetch_applies_nothing(slow):
    out: list = []
    thread = _sync_in_thread(slow.pk, out)
    assert SlowConnector.entered.wait(30)
    try:
        # the first worker "hangs" past its lease; another sync takes over and finishes first
        Connection.objects.filter(pk=slow.pk).update(sync_lease_until=datetime(2000, 1, 1, tzinfo=UTC))
        SlowConnector.release.set()
        SlowConnector.entered.clear()
        second = connection_sync(connection_id=slow.pk)
    finally:
        SlowConnector.release.set()
        thread.join(60)
    assert second is not None and second.status == "ok"
    late = out[0]
    assert late.status == "failed" and "lease" in late.errors[0]
    # whichever finished last, one appointment, and no lease left behind
    assert Appointment.objects.filter(connection=slow, external_id="z1").count() == 1
    slow.refresh_from_db()
    assert slow.sync_lease_until is None
