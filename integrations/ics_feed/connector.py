"""iCalendar feeds (platform ``ics_feed``): any calendar published as an .ics URL, polled on a schedule.

A feed is complete by definition: every fetch is a full read of the window, so an event that disappears
from it within the window is cancelled (``FetchResult.complete_window``) — but only after the whole body
arrived and parsed; a timeout, a 5xx, a truncated or malformed body raise ConnectorError and change nothing.

Connection setup: ``credentials = {"url": "https://…/calendar.ics"}`` (encrypted: a feed URL is a bearer
secret), ``config = {"as_busy": false, "window_past_days": 30, "window_future_days": 180}``. The connection
must belong to a therapist (floating and all-day times are read in their zone).

Conditional requests: the cursor keeps the feed's ETag / Last-Modified and the day of the last full read.
A 304 on the same day changes nothing; on a new day the feed is read unconditionally, because the window
moved and series must be expanded over the new days even if the file did not change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from lib.ids import parse_whole

from ..base import Connector, ConnectorConfigError, ConnectorError, ExternalEvent, FetchResult
from ..http import HttpClient
from .parse import IcsError, Occurrence, ParsedCalendar, check_size, parse_calendar

if TYPE_CHECKING:
    from ..models import Connection

logger = logging.getLogger(__name__)


def event_version(*parts: object) -> str:
    """A change stamp for an occurrence: any difference in what we store makes it newer."""
    return "h:" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20]


def occurrences_to_events(
    parsed: ParsedCalendar,
    *,
    platform: str,
    as_busy: bool = False,
    type: str = "other",
    patient_key_of: Any = None,
    busy_title: Any = None,
) -> list[ExternalEvent]:
    """ExternalEvents for sync_apply. Cancelled and transparent occurrences are authoritative "gone"s
    (they do not occupy); all-day events are busy time; titles are used only for the patient key and the
    busy test, and never stored."""
    from ..services import patient_pseudonym

    events = []
    for occ in parsed.occurrences:
        # An all-day event is a marker (a conference, a holiday), never a 24-hour session: busy time.
        busy = as_busy or occ.all_day or bool(busy_title and busy_title(occ.title))
        gone = occ.cancelled or occ.transparent
        key = "" if busy or gone or patient_key_of is None else patient_key_of(occ.title)
        status = "cancelled" if gone else "scheduled"
        events.append(
            ExternalEvent(
                external_id=occ.uid,
                recurrence_id=occ.recurrence_id,
                start=occ.start,
                end=occ.end,
                status=status,
                patient_key=key,
                type=type,
                deleted=gone,
                busy_only=busy,
                version=event_version(
                    occ.start.isoformat(), occ.end.isoformat(), status, busy, patient_pseudonym(platform, key)
                ),
                raw=_raw(occ),
            )
        )
    return events


def _raw(occ: Occurrence) -> dict[str, Any]:
    """What we keep of the source event, for audit: times and state, never the title or description."""
    return {
        "uid": occ.uid,
        "recurrence_id": occ.recurrence_id,
        "start": occ.start.isoformat(),
        "end": occ.end.isoformat(),
        "zone": occ.zone,
        "all_day": occ.all_day,
        "sequence": occ.sequence,
        "cancelled": occ.cancelled,
        "transparent": occ.transparent,
    }


def redacted(url: str) -> str:
    """A feed URL without its secret parts (path and query), for messages shown to staff."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "the feed URL"


class IcsFeedConnector(Connector):
    platform = "ics_feed"
    min_sync_interval = timedelta(minutes=5)
    supports_write = False
    event_type = "other"

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.credentials: dict[str, Any] = connection.credentials or {}
        self.config: dict[str, Any] = connection.config or {}
        self.http = HttpClient(platform=self.platform, timeout=(5.0, 60.0))

    # --- hooks for platforms that publish through a feed ------------------------------------------------

    def patient_key(self, title: str) -> str:
        """The raw patient key an event's title gives (pseudonymised by the hub); none for generic feeds."""
        return ""

    def is_busy(self, title: str) -> bool:
        return False

    # ----------------------------------------------------------------------------------------------------

    def fetch(self, *, cursor: str | None, window: tuple[datetime, datetime]) -> FetchResult:
        url = self.credentials.get("url", "")
        if self.config.get("upload"):
            raise ConnectorConfigError("This connection receives uploaded files; it has no feed to poll.")
        if not url:
            raise ConnectorConfigError(f"The {self.platform} connection has no feed URL (credentials.url).")
        if self.connection.therapist_id is None:
            raise ConnectorConfigError(f"A {self.platform} connection must belong to a therapist.")
        state = _state(cursor)
        day = window[0].date().isoformat()
        headers = {"Accept": "text/calendar"}
        if state.get("day") == day:
            if state.get("etag"):
                headers["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                headers["If-Modified-Since"] = state["last_modified"]
        body, response = self._get(url, headers)
        if response.status_code == 304:
            return FetchResult([], cursor=cursor)
        try:
            parsed = parse_calendar(
                body,
                window=window,
                default_zone=self.connection.therapist.timezone,
                max_bytes=settings.ICS_IMPORT_MAX_BYTES,
            )
        except IcsError as exc:
            # Possibly a body cut off in transit: the next poll may get it whole. Nothing is touched.
            raise ConnectorError(f"{self.platform}: the feed could not be read: {exc.message}") from None
        if parsed.warnings:  # lines and UIDs only, never a value from the feed
            logger.info(
                "%s connection %s: %s", self.platform, self.connection.pk, "; ".join(parsed.warnings[:20])
            )
        events = occurrences_to_events(
            parsed,
            platform=self.platform,
            as_busy=bool(self.config.get("as_busy", False)),
            type=self.event_type,
            patient_key_of=self.patient_key,
            busy_title=self.is_busy,
        )
        new_cursor = json.dumps(
            {
                "etag": response.headers.get("ETag", ""),
                "last_modified": response.headers.get("Last-Modified", ""),
                "day": day,
            }
        )
        return FetchResult(events, cursor=new_cursor, complete_window=window)

    def _get(self, url: str, headers: dict[str, str]) -> tuple[bytes, requests.Response]:
        limit = int(settings.ICS_IMPORT_MAX_BYTES)
        try:
            response = self.http.request("GET", url, expected=(304,), headers=headers, stream=True)
            if response.status_code == 304:
                return b"", response
            declared = parse_whole(response.headers.get("Content-Length") or "")
            if declared is not None:
                check_size(declared, limit)
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                check_size(size, limit)
                chunks.append(chunk)
            return b"".join(chunks), response
        except IcsError as exc:
            raise ConnectorError(f"{self.platform}: {exc.message}", permanent=True) from None
        except ConnectorError as exc:
            # The URL is a secret: it must not reach messages shown to staff or stored on runs.
            parts = urlsplit(url)
            for secret in (
                url,
                f"{parts.path}?{parts.query}" if parts.query else "",
                parts.path,
                parts.query,
            ):
                if secret and secret != "/":
                    exc.message = exc.message.replace(secret, redacted(url) if secret == url else "…")
            exc.args = (exc.message,)
            raise
        except requests.RequestException as exc:  # the body broke off mid-transfer
            raise ConnectorError(
                f"{self.platform}: the feed's body was cut off ({type(exc).__name__})."
            ) from None


def _state(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}
