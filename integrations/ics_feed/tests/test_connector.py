"""A generic iCalendar feed subscription (platform ics_feed) over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command

from integrations.ics_feed.services import ics_feed_subscribe
from integrations.models import Connection
from integrations.services import connection_sync
from integrations.zocdoc.emulator import serve_app
from lib.errors import InvalidInput
from scheduler.models import Appointment, BusyBlock

GOOGLE = (Path(__file__).parent / "fixtures" / "google.ics").read_bytes()


class Feed:
    """A plain .ics file server: whatever ``body`` holds, no conditional requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __call__(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/calendar"), ("Content-Length", str(len(self.body)))])
        return [self.body]


@pytest.fixture
def feed():
    app = Feed(GOOGLE)
    server, url = serve_app(app)
    app.url = f"{url}/private-abc123/basic.ics"
    yield app
    server.shutdown()
    server.server_close()


@pytest.fixture
def frozen():
    with time_machine.travel(datetime(2026, 10, 15, 12, tzinfo=UTC), tick=True):
        yield


def test_a_busy_feed_becomes_busy_blocks_and_an_event_gone_from_it_frees_the_time(frozen, feed, therapist_a):
    connection = ics_feed_subscribe(actor=None, therapist=therapist_a, url=feed.url, as_busy=True)
    run = connection_sync(connection_id=connection.pk)
    assert run.status == "ok", run.errors
    assert not Appointment.objects.exists()
    # 5 series occurrences, the single event and the all-day event; free and cancelled ones do not block.
    assert BusyBlock.objects.filter(connection=connection).count() == 7
    feed.body = GOOGLE.replace(b"UID:0single1utc@google.com", b"UID:0single1utc-replaced@google.com")
    run = connection_sync(connection_id=connection.pk)
    assert run.cancelled == 1 and run.created == 1
    ids = set(BusyBlock.objects.values_list("external_id", flat=True))
    assert "0single1utc@google.com" not in ids and "0single1utc-replaced@google.com" in ids


def test_subscribing_validates_the_url_and_webcal_means_https(therapist_a):
    with pytest.raises(InvalidInput):
        ics_feed_subscribe(actor=None, therapist=therapist_a, url="ftp://example.test/cal.ics")
    with pytest.raises(InvalidInput):
        ics_feed_subscribe(actor=None, therapist=therapist_a, url="https://x.test/a.ics", platform="zocdoc")
    connection = ics_feed_subscribe(actor=None, therapist=therapist_a, url="webcal://example.test/cal.ics")
    assert connection.credentials == {"url": "https://example.test/cal.ics"}


def test_the_upload_connection_is_never_polled(therapist_a):
    from integrations.ics_feed.services import ics_upload_connection

    connection = ics_upload_connection(therapist=therapist_a)
    Connection.objects.filter(pk=connection.pk).update(status=Connection.Status.OK)  # someone resumed it
    run = connection_sync(connection_id=connection.pk)
    assert run.status == "failed" and "uploaded files" in run.errors[0]


def test_the_subscribe_command(frozen, feed, therapist_a, capsys):
    call_command(
        "subscribe_ics_feed", feed.url, "--therapist", therapist_a.email, "--platform", "simplepractice"
    )
    out = capsys.readouterr().out
    connection = Connection.objects.get(platform="simplepractice")
    assert f"connection {connection.pk}" in out and "private-abc123" not in out
    assert connection_sync(connection_id=connection.pk).status == "ok"
