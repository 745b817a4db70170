"""connection_sync: the rules around a fetch (the connector is scripted here; platform connectors are
tested against their emulators over real HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from integrations import registry
from integrations.base import (
    Connector,
    ConnectorAuthError,
    ConnectorError,
    CursorExpired,
    ExternalEvent,
    FetchResult,
)
from integrations.models import Connection, SyncRun
from integrations.services import connection_schedule, connection_sync
from scheduler.models import Appointment

SLOT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


class ScriptedConnector(Connector):
    platform = "zocdoc"
    min_sync_interval = timedelta(minutes=5)
    script: list = []
    calls: list = []

    def fetch(self, *, cursor, window):
        ScriptedConnector.calls.append(cursor)
        step = ScriptedConnector.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


@pytest.fixture
def connection(therapist_a, monkeypatch):
    monkeypatch.setitem(registry.CONNECTORS, "zocdoc", f"{__name__}.ScriptedConnector")
    ScriptedConnector.script, ScriptedConnector.calls = [], []
    return Connection.objects.create(platform="zocdoc", display_name="Z", therapist=therapist_a)


def ev(eid, hours=0):
    return ExternalEvent(
        external_id=eid,
        start=SLOT + timedelta(hours=hours),
        end=SLOT + timedelta(hours=hours, minutes=30),
        version="1",
    )


def test_a_sync_applies_the_batch_records_the_run_and_stores_the_cursor_after(connection):
    ScriptedConnector.script = [FetchResult([ev("a"), ev("b", 2)], cursor="c1")]
    run = connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert (run.status, run.created, run.full_read) == ("ok", 2, True)
    assert (connection.cursor, connection.status) == ("c1", "ok") and connection.last_synced_at
    ScriptedConnector.script = [FetchResult([], cursor="c2")]
    connection_sync(connection_id=connection.pk)
    assert ScriptedConnector.calls == [None, "c1"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConnectorError("timed out"), "ok"),
        (ConnectorError("HTTP 503", retry_after=30), "ok"),
        (ConnectorError("unknown practice", permanent=True), "error"),
        (ConnectorAuthError("invalid_grant"), "needs_reauth"),
    ],
)
def test_a_failed_fetch_changes_no_appointment_and_is_recorded(connection, error, status):
    ScriptedConnector.script = [FetchResult([ev("a")], cursor="c1")]
    connection_sync(connection_id=connection.pk)
    ScriptedConnector.script = [error]
    run = connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert (run.status, run.errors) == ("failed", [error.message])
    assert (connection.status, connection.last_error, connection.cursor) == (status, error.message, "c1")
    assert list(Appointment.objects.values_list("external_id", "status")) == [("a", "scheduled")]


def test_three_transient_failures_in_a_row_turn_the_connection_to_error_and_a_success_back_to_ok(
    connection, admin_client
):
    ScriptedConnector.script = [FetchResult([ev("a")], cursor="c1")]
    connection_sync(connection_id=connection.pk)
    statuses = []
    for _ in range(3):
        ScriptedConnector.script = [ConnectorError("HTTP 503")]
        connection_sync(connection_id=connection.pk)
        connection.refresh_from_db()
        statuses.append((connection.status, connection.failed_syncs))
    assert statuses == [("ok", 1), ("ok", 2), ("error", 3)]
    # The admin's status filter and the API show it.
    page = admin_client.get("/admin/integrations/connection/", {"status__exact": "error"})
    assert page.status_code == 200 and f"/admin/integrations/connection/{connection.pk}/change/" in (
        page.content.decode()
    )
    assert (
        admin_client.get("/admin/integrations/connection/", {"status__exact": "ok"})
        .context["cl"]
        .result_count
        == 0
    )
    listed = admin_client.get("/api/v1/connections/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["id"], r["status"]) for r in rows] == [(connection.pk, "error")]
    # An `error` connection keeps its schedule and keeps trying, so it recovers by itself.
    connection_schedule(connection=connection)
    assert PeriodicTask.objects.get(name=f"sync connection {connection.pk}").enabled
    ScriptedConnector.script = [FetchResult([], cursor="c2")]
    run = connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert (run.status, connection.status, connection.failed_syncs, connection.last_error) == (
        "ok",
        "ok",
        0,
        "",
    )


def test_a_success_between_failures_restarts_the_count(connection):
    for step in [ConnectorError("x"), ConnectorError("x"), FetchResult([], cursor="c1"), ConnectorError("x")]:
        ScriptedConnector.script = [step]
        connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert (connection.status, connection.failed_syncs) == ("ok", 1)


def test_failures_do_not_clobber_needs_reauth(connection):
    ScriptedConnector.script = [ConnectorError("x"), ConnectorError("x"), ConnectorAuthError("invalid_grant")]
    for _ in range(3):
        connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert (connection.status, connection.failed_syncs) == ("needs_reauth", 3)
    assert connection_sync(connection_id=connection.pk) is None  # waits for new credentials


def test_the_window_is_re_read_in_full_once_the_last_full_read_is_a_day_old(connection):
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False) as clock:
        ScriptedConnector.script = [FetchResult([], cursor="c1")] + [FetchResult([], cursor="c2")] * 3
        connection_sync(connection_id=connection.pk)
        clock.shift(timedelta(hours=23))
        connection_sync(connection_id=connection.pk)
        clock.shift(timedelta(hours=1))
        full = connection_sync(connection_id=connection.pk)
        connection.refresh_from_db()
        assert connection.last_full_sync_at == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
        clock.shift(timedelta(hours=1))
        connection_sync(connection_id=connection.pk)
    assert ScriptedConnector.calls == [None, "c1", None, "c2"]
    assert full.full_read


def test_the_full_read_interval_can_be_set_per_connection(connection):
    connection.config = {"full_read_hours": 1}
    connection.save()
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False) as clock:
        ScriptedConnector.script = [FetchResult([], cursor="c1")] * 3
        connection_sync(connection_id=connection.pk)
        clock.shift(timedelta(minutes=30))
        connection_sync(connection_id=connection.pk)
        clock.shift(timedelta(minutes=30))
        connection_sync(connection_id=connection.pk)
    assert ScriptedConnector.calls == [None, "c1", None]


def test_a_failed_full_read_is_tried_again_on_the_next_sync(connection):
    ScriptedConnector.script = [ConnectorError("HTTP 503"), FetchResult([], cursor="c1")]
    connection_sync(connection_id=connection.pk)
    connection_sync(connection_id=connection.pk)
    connection.refresh_from_db()
    assert ScriptedConnector.calls == [None, None] and connection.last_full_sync_at is not None


def test_paused_and_needs_reauth_connections_do_not_run(connection):
    for status in ("paused", "needs_reauth"):
        Connection.objects.filter(pk=connection.pk).update(status=status)
        assert connection_sync(connection_id=connection.pk) is None
    assert ScriptedConnector.calls == [] and not SyncRun.objects.exists()


def test_an_expired_cursor_falls_back_to_a_complete_read_diffed_against_the_ledger(connection):
    ScriptedConnector.script = [FetchResult([ev("a"), ev("b", 2)], cursor="c1")]
    connection_sync(connection_id=connection.pk)
    now = datetime.now(UTC)
    window = (now - timedelta(days=30), now + timedelta(days=180))
    ScriptedConnector.script = [CursorExpired(), FetchResult([ev("a")], cursor="c9", complete_window=window)]
    run = connection_sync(connection_id=connection.pk)
    assert ScriptedConnector.calls == [None, "c1", None]
    assert (run.full_read, run.cancelled) == (True, 1)
    assert dict(Appointment.objects.values_list("external_id", "status")) == {
        "a": "scheduled",
        "b": "cancelled",
    }


def test_sync_connection_command_prints_counts_and_fails_loudly(connection, capsys):
    ScriptedConnector.script = [FetchResult([ev("a")], cursor="c1")]
    call_command("sync_connection", str(connection.pk))
    assert (
        "ok: fetched 1, created 1, updated 0, cancelled 0, unchanged 0, errors 0" in capsys.readouterr().out
    )
    ScriptedConnector.script = [ConnectorError("HTTP 500")]
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("sync_connection", str(connection.pk))
    with pytest.raises(CommandError, match="No connection 999"):
        call_command("sync_connection", "999")


def test_each_connection_gets_its_own_beat_schedule_no_faster_than_the_platform_allows(connection):
    connection.sync_interval_minutes = 1
    connection_schedule(connection=connection)
    task = PeriodicTask.objects.get(name=f"sync connection {connection.pk}")
    assert (task.interval.every, task.task, json.loads(task.args), task.enabled) == (
        5,
        "integrations.tasks.connection_sync_task",
        [connection.pk],
        True,
    )
    connection.status = "needs_reauth"
    connection_schedule(connection=connection)
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
