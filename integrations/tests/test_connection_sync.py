"""connection_sync: the rules around a fetch (the connector is scripted here; platform connectors are
tested against their emulators over real HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
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
