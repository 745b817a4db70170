"""Every calendar shipped in icalendar's and recurring-ical-events' own test corpora, through the upload
service (``import_ics``, the API, the job) and the feed path (``subscribe_ics_feed`` → the connector's parse
→ sync_apply): a clean import or a clean refusal (IcsError / InvalidInput with a message), never an
unhandled exception. Parametrised per file, so a failure names it. The result is reported in docs/ical.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from integrations.base import FetchResult
from integrations.ics_feed.connector import occurrences_to_events
from integrations.ics_feed.parse import IcsError, parse_calendar
from integrations.ics_feed.services import ics_feed_subscribe, ics_import_apply
from integrations.services import sync_apply
from lib.errors import InvalidInput

CORPUS = sorted(
    [
        *Path(icalendar.__file__).parent.joinpath("tests").rglob("*.ics"),
        *Path(recurring_ical_events.__file__).parent.rglob("*.ics"),
    ]
)
WINDOW = (datetime(2019, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))


def test_the_corpus_is_there():
    assert len(CORPUS) > 200


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_corpus_calendar_imports_or_is_refused_cleanly(path, therapist_a):
    data = path.read_bytes()
    try:
        result = ics_import_apply(actor=None, therapist=therapist_a, data=data, window=WINDOW)
    except InvalidInput as exc:
        assert exc.message.startswith("The .ics file was refused: ")
    else:  # per-record problems (a zero-length or over-long event) are reported, not raised
        assert all(isinstance(e, str) for e in result.errors)
    connection = ics_feed_subscribe(actor=None, therapist=therapist_a, url="https://feed.example/x.ics")
    try:
        parsed = parse_calendar(data, window=WINDOW, default_zone=therapist_a.timezone)
    except IcsError as exc:
        assert exc.message
        return
    events = occurrences_to_events(parsed, platform="ics_feed")
    sync_apply(connection=connection, result=FetchResult(events, complete_window=WINDOW))
