"""A real Celery worker process consumes a task enqueued on commit, through the configured broker:
kombu's filesystem transport on the SQLite run, Redis on the PostgreSQL run."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.celery import app as celery_app
from conflicts.models import Conflict
from scheduler.services import appointment_book, therapist_set_working_hours
from tests.workers import purge_queue, start_worker, stop_worker

pytestmark = [pytest.mark.celery_worker, pytest.mark.dbspecific]


@pytest.fixture
def worker(transactional_db, tmp_path: Path):
    celery_app.conf.task_always_eager = False
    purge_queue()
    proc = start_worker(tmp_path / "worker.log")
    yield proc, tmp_path / "worker.log"
    stop_worker(proc)
    celery_app.conf.task_always_eager = True


def test_a_task_enqueued_on_commit_is_consumed_by_a_separate_worker(worker, therapist_a, frontdesk_user):
    proc, log = worker
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 12, 7, 18, 0, tzinfo=ny)  # evening: outside 09:00-17:00
    appointment = appointment_book(
        actor=frontdesk_user, therapist=therapist_a, start=start, end=start + timedelta(minutes=50)
    )
    assert Conflict.objects.filter(kind="outside_hours", status="open").exists()

    # Committed (transactional test), so on_commit sends the re-check to the broker, not eagerly.
    therapist_set_working_hours(
        actor=frontdesk_user, therapist=therapist_a, working_hours={"monday": ["09:00-20:00"]}
    )
    assert Conflict.objects.filter(kind="outside_hours", status="open").exists(), (
        "must not have run in-process"
    )

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if not Conflict.objects.filter(kind="outside_hours", status="open").exists():
            break
        time.sleep(0.3)
    output = log.read_text()
    assert proc.poll() is None, f"worker died:\n{output}"
    assert not Conflict.objects.filter(kind="outside_hours", status="open").exists(), output
    assert "conflicts_detect_for_therapist_task" in output and "succeeded" in output
    assert appointment.conflicts.get().resolution == "no_longer_applies"
