"""Two real Celery worker processes drain one write queue at once (PostgreSQL + Redis on the PostgreSQL
run; SQLite + the filesystem broker on the SQLite run): every job is sent exactly once."""

from __future__ import annotations

import ast
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.celery import app as celery_app
from integrations.models import APIWriteQueue, Connection
from integrations.tasks import write_queue_drain_task
from integrations.tests.sink import Sink, serve
from scheduler.services import appointment_book
from tests.workers import purge_queue, start_worker, stop_worker

pytestmark = [pytest.mark.celery_worker, pytest.mark.dbspecific]
JOBS = 40
SINK = "outlook=integrations.tests.sink.SinkConnector"


@pytest.fixture
def sink(settings):
    settings.CONNECTOR_OVERRIDES = {"outlook": "integrations.tests.sink.SinkConnector"}
    sink = Sink()
    sink.latency = 0.05
    server, url = serve(sink)
    sink.url = url
    yield sink
    server.shutdown()
    server.server_close()


@pytest.fixture
def two_workers(transactional_db, tmp_path: Path):
    celery_app.conf.task_always_eager = False
    purge_queue()
    logs = [tmp_path / "writer-one.log", tmp_path / "writer-two.log"]
    procs = [start_worker(log, {"HUB_TEST_CONNECTORS": SINK}) for log in logs]
    yield procs, logs
    for proc in procs:
        stop_worker(proc)
    celery_app.conf.task_always_eager = True


def test_two_workers_draining_at_once_send_every_job_exactly_once(
    sink, two_workers, therapist_a, frontdesk_user
):
    procs, logs = two_workers
    Connection.objects.create(
        platform="outlook",
        display_name="Outlook",
        therapist=therapist_a,
        write_enabled=True,
        credentials={"base_url": sink.url, "timeout": 5},
        config={"write_rate_per_minute": 1000},
    )
    first = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    for n in range(JOBS):
        start = first + timedelta(hours=n)
        appointment_book(
            actor=frontdesk_user, therapist=therapist_a, start=start, end=start + timedelta(minutes=50)
        )
    assert APIWriteQueue.objects.filter(status="pending").count() == JOBS
    for _ in range(6):  # more drains than workers: both are busy draining at the same time
        write_queue_drain_task.delay()

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        if APIWriteQueue.objects.filter(status="done").count() == JOBS:
            break
        time.sleep(0.3)
    outputs = [log.read_text() for log in logs]
    assert all(p.poll() is None for p in procs), "a worker died:\n" + "\n".join(outputs)
    assert APIWriteQueue.objects.filter(status="done").count() == JOBS, outputs

    created = sink.created()
    assert len(created) == JOBS and set(created.values()) == {1}
    assert len(sink.log) == JOBS, "a job was sent more than once"
    # Both workers really sent: each log's successful drains report what they sent.
    sent = [
        sum(ast.literal_eval(m)["sent"] for m in re.findall(r"succeeded in [\d.]+s: (\{[^}]*\})", out))
        for out in outputs
    ]
    assert sum(sent) == JOBS and all(s > 0 for s in sent), sent
