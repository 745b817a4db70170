"""Google Calendar: a therapist's own calendar, read as busy time and written with the hub's appointments
(platforms.md §1). Every call goes through google-api-python-client and google-auth, aimed by settings at
Google or at the emulator (integrations/google/emulator.py).

Reading. ``events.list`` with ``singleEvents=true`` (recurring events arrive as instances), every page
followed, ``nextSyncToken`` kept only from the last page; a 410 raises :class:`CursorExpired` and the sync
service re-reads the window in full. Events the hub wrote carry
``extendedProperties.private.hubAppointmentId`` and come back as ``ExternalEvent(hub_uid=...)``; every
other event becomes busy time with nothing kept but ids, times and state. Free (``transparent``) events,
events the therapist declined, cancelled events, and all-day events (unless the connection's
``all_day_blocks`` is true) hold no time and are reported as ``deleted=True`` busy events, so a block that
existed is removed when an event turns free.

Writing (PHI-free). One event per hub appointment, its id derived from the appointment's uuid (base32hex),
so a retry after a lost response gets 409 and converges by patching instead of creating a second event.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httplib2
from django.conf import settings
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from ..base import (
    Connector,
    ConnectorAuthError,
    ConnectorError,
    CursorExpired,
    ExternalEvent,
    FetchResult,
    PushResult,
    deterministic_event_id,
)
from ..http import retry_after_seconds

if TYPE_CHECKING:
    from django.http import HttpRequest

    from ..models import APIWriteQueue, Connection

SCOPES = [
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.readonly",
]
HUB_PROPERTY = "hubAppointmentId"  # in extendedProperties.private: visible only to this OAuth client
PAGE_SIZE = 250
TIMEOUT = 30.0
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def event_id_for(appointment_uid: str | uuid.UUID) -> str:
    """The Google event id of a hub appointment: base32hex of its uuid's 16 bytes (26 chars of a-v0-9)."""
    return deterministic_event_id(str(appointment_uid))


def credentials_for(data: dict[str, Any]) -> Credentials:
    """google-auth credentials from a connection's stored (decrypted) tokens and the OAuth client settings."""
    if not data.get("refresh_token"):
        raise ConnectorAuthError("The Google connection has no refresh token: connect it again.")
    expiry = None
    if data.get("token_expiry"):
        # google-auth compares expiry with a naive UTC now.
        expiry = datetime.fromisoformat(data["token_expiry"]).astimezone(UTC).replace(tzinfo=None)
    return Credentials(
        token=data.get("access_token") or None,
        refresh_token=data["refresh_token"],
        token_uri=settings.GOOGLE_OAUTH_TOKEN_URI,
        client_id=settings.GOOGLE_OAUTH_CLIENT_ID,
        client_secret=settings.GOOGLE_OAUTH_CLIENT_SECRET,
        scopes=SCOPES,
        expiry=expiry,
    )


def calendar_service(credentials: Credentials) -> Any:
    """The Calendar v3 client, from the discovery document shipped in the library (no network to build)."""
    # One refresh on a 401, then the 401 stands (the token was revoked, or the grant is broken).
    http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=TIMEOUT), max_refresh_attempts=1)
    return build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": settings.GOOGLE_CALENDAR_API_ENDPOINT},
    )


def call(request: Any) -> Any:
    """Execute one API request, mapping failures to the connector errors (the status-code policy)."""
    try:
        return request.execute()
    except HttpError as exc:
        raise error_for(exc) from exc
    except RefreshError as exc:
        if (
            "invalid_grant" in str(exc)
            or "invalid_client" in str(exc)
            or not getattr(exc, "retryable", False)
        ):
            # The user revoked access, the grant expired, or the client was deleted: only a reconnect helps.
            raise ConnectorAuthError(f"Google refused to refresh the access token: {exc}") from exc
        raise ConnectorError(f"Google's token endpoint failed: {exc}") from exc
    except (TransportError, httplib2.HttpLib2Error, OSError) as exc:  # OSError covers timeouts
        raise ConnectorError(f"Google Calendar could not be reached: {exc}") from exc


def error_for(exc: HttpError) -> ConnectorError:
    """Google's documented errors (https://developers.google.com/workspace/calendar/api/guides/errors)."""
    status = exc.status_code
    reasons = {d.get("reason") for d in (exc.error_details or []) if isinstance(d, dict)}
    message = f"Google Calendar: HTTP {status}: {exc.reason}"
    retry_after = retry_after_seconds(exc.resp.get("retry-after")) if exc.resp is not None else None
    if status == 410 and "fullSyncRequired" in reasons:
        return CursorExpired(message)
    if status == 429 or (status == 403 and reasons & RATE_LIMIT_REASONS):
        # Rate limits: the guide says back off exponentially and retry.
        return ConnectorError(message, retry_after=retry_after)
    if status >= 500 or status == 408:
        return ConnectorError(message, retry_after=retry_after)
    if status == 401:
        # AuthorizedHttp already refreshed once and the new token was refused too.
        return ConnectorAuthError(message)
    # 400 (a malformed request), 403 (forbiddenForNonOrganizer, no access to the calendar), 404, 409, 412:
    # sending the same request again gets the same answer. Callers that expect one handle it first.
    return ConnectorError(message, permanent=True)


class GoogleCalendarConnector(Connector):
    platform = "google"
    # Push notifications bring changes within seconds; polling is the safety net, and quota is per project.
    min_sync_interval = timedelta(minutes=5)
    supports_write = True

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.credentials_data: dict[str, Any] = connection.credentials or {}
        self.config: dict[str, Any] = connection.config or {}
        self._service: Any = None
        self._credentials: Credentials | None = None

    @property
    def calendar_id(self) -> str:
        return self.credentials_data.get("calendar_id") or self.config.get("calendar_id") or "primary"

    @property
    def service(self) -> Any:
        if self._service is None:
            self._credentials = credentials_for(self.credentials_data)
            self._service = calendar_service(self._credentials)
        return self._service

    def refreshed_tokens(self) -> dict[str, Any] | None:
        """The access token google-auth obtained during this run, for the caller to store (or None)."""
        creds = self._credentials
        if creds is None or not creds.token or creds.token == self.credentials_data.get("access_token"):
            return None
        expiry = creds.expiry.replace(tzinfo=UTC).isoformat() if creds.expiry else ""
        return {"access_token": creds.token, "token_expiry": expiry}

    # --- read ---------------------------------------------------------------------------------------

    def fetch(self, *, cursor: str | None, window: tuple[datetime, datetime]) -> FetchResult:
        params: dict[str, Any] = {
            "calendarId": self.calendar_id,
            "singleEvents": True,
            "maxResults": PAGE_SIZE,
        }
        if cursor:
            params["syncToken"] = cursor  # no other restriction may accompany it (400 otherwise)
        else:
            params["timeMin"] = window[0].astimezone(UTC).isoformat()
            params["timeMax"] = window[1].astimezone(UTC).isoformat()
            # Deletions missed while a sync token was expired come back as tombstones: the hub's own events
            # are judged by an explicit deletion, never by absence (a moved-away event is absent too).
            params["showDeleted"] = True
        zone = "UTC"
        items: list[dict[str, Any]] = []
        page_token = None
        while True:
            page = call(self.service.events().list(**params, pageToken=page_token))
            zone = page.get("timeZone") or zone
            items.extend(page.get("items") or [])
            page_token = page.get("nextPageToken")
            if not page_token:
                sync_token = page.get("nextSyncToken")
                break
        events, errors, unreadable = [], [], set()
        for item in items:
            try:
                events.append(self._event(item, zone))
            except (KeyError, TypeError, ValueError) as exc:
                errors.append(f"{item.get('id', '?')}: Google sent an event the hub cannot read ({exc!r})")
                unreadable.add(str(item.get("id", "")))
        return FetchResult(
            events,
            # With an unreadable event the token stays where it was, so the event is read again next time.
            cursor=(cursor if cursor else None) if unreadable else sync_token,
            complete_window=None if cursor else window,
            errors=errors,
            unreadable_ids=frozenset(unreadable),
        )

    def _event(self, item: dict[str, Any], zone: str) -> ExternalEvent:
        event_id = item["id"]
        version = item.get("updated", "")
        recurring = item.get("recurringEventId", "")
        hub_uid = str(((item.get("extendedProperties") or {}).get("private") or {}).get(HUB_PROPERTY) or "")
        if item.get("status") == "cancelled":
            # A deleted event carries only its id: the hub finds what it was from its ledger.
            return ExternalEvent(
                external_id=event_id, deleted=True, busy_only=not hub_uid, hub_uid=hub_uid, version=version
            )
        start, all_day = _when(item["start"], zone)
        end, _ = _when(item["end"], zone)
        raw = {
            "id": event_id,
            "status": item.get("status", "confirmed"),
            "transparency": item.get("transparency", "opaque"),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "all_day": all_day,
            "updated": version,
            **({"recurringEventId": recurring} if recurring else {}),
        }
        if hub_uid:
            return ExternalEvent(
                external_id=event_id, start=start, end=end, hub_uid=hub_uid, version=version, raw=raw
            )
        declined = any(
            a.get("self") and a.get("responseStatus") == "declined" for a in item.get("attendees") or ()
        )
        blocks = (
            item.get("transparency", "opaque") != "transparent"
            and not declined
            and (not all_day or bool(self.config.get("all_day_blocks", False)))
        )
        return ExternalEvent(
            external_id=event_id,
            start=start,
            end=end,
            busy_only=True,
            deleted=not blocks,  # holds no time: a block that existed for it goes
            version=version,
            raw=raw,
        )

    # --- write --------------------------------------------------------------------------------------

    def push(self, job: APIWriteQueue) -> PushResult:
        payload = job.payload or {}
        try:
            uid = str(payload["uid"])
            event_id = event_id_for(uid)
        except (KeyError, ValueError) as exc:
            raise ConnectorError(
                f"The write job has no valid appointment uid ({exc!r}).", permanent=True
            ) from exc
        events = self.service.events()
        if job.operation == "delete" or payload.get("status") == "cancelled":
            try:
                call(events.delete(calendarId=self.calendar_id, eventId=event_id, sendUpdates="none"))
            except ConnectorError as exc:
                if not _status_in(exc, (404, 410)):  # already gone: the goal is reached
                    raise
            return PushResult(external_id=event_id)
        body = self.event_body(payload)
        if job.operation == "create":
            try:
                created = call(events.insert(calendarId=self.calendar_id, body={**body, "id": event_id}))
                return PushResult(external_id=event_id, version=created.get("updated", ""))
            except ConnectorError as exc:
                if not _status_in(exc, (409,)):
                    raise
                # It exists: an earlier attempt whose answer was lost, or an event deleted in Google whose id
                # stays taken. Patching makes it match (and confirmed) either way.
        elif job.operation != "update":
            raise ConnectorError(f"Unknown write operation {job.operation!r}.", permanent=True)
        try:
            patched = call(events.patch(calendarId=self.calendar_id, eventId=event_id, body=body))
        except ConnectorError as exc:
            if not _status_in(exc, (404,)):
                raise
            patched = call(events.insert(calendarId=self.calendar_id, body={**body, "id": event_id}))
        return PushResult(external_id=event_id, version=patched.get("updated", ""))

    def event_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """What Google learns of an appointment: a generic label, the time, a link back; no patient data."""
        link = f"{settings.HUB_BASE_URL.rstrip('/')}/admin/scheduler/appointment/?uid={payload['uid']}"
        zone = str(payload.get("timezone") or "UTC")
        return {
            "summary": str(self.config.get("event_label") or "Appointment"),
            "description": link,
            "start": {"dateTime": str(payload["start"]), "timeZone": zone},
            "end": {"dateTime": str(payload["end"]), "timeZone": zone},
            "status": "confirmed",
            "visibility": "private",
            "transparency": "opaque",
            "attendees": [],
            "reminders": {"useDefault": True},
            "extendedProperties": {"private": {HUB_PROPERTY: str(payload["uid"])}},
        }

    # --- push notifications -------------------------------------------------------------------------

    def parse_webhook(self, request: HttpRequest) -> list[str]:
        """Check the channel id, resource id and channel token (constant time) against this connection's
        channel; an empty body is all Google sends. The announcement is "something changed": sync."""
        channel = self.config.get("channel") or {}
        expected_token = str(self.credentials_data.get("channel_token") or "")
        given_id = request.headers.get("X-Goog-Channel-ID", "")
        given_token = request.headers.get("X-Goog-Channel-Token", "")
        if (
            not channel.get("id")
            or not expected_token
            or not hmac.compare_digest(str(channel["id"]).encode(), given_id.encode())
        ):
            raise ConnectorAuthError("The Google notification is for an unknown channel.")
        if not hmac.compare_digest(expected_token.encode(), given_token.encode()):
            raise ConnectorAuthError("The Google notification's channel token is wrong.")
        if channel.get("resource_id") and request.headers.get("X-Goog-Resource-ID") != channel["resource_id"]:
            raise ConnectorAuthError("The Google notification names another resource.")
        state = request.headers.get("X-Goog-Resource-State", "")
        if state in ("exists", "not_exists"):
            return [f"{given_id}:{request.headers.get('X-Goog-Message-Number', '')}"]
        return []  # "sync" (the channel works) and anything unknown: acknowledged, nothing to read

    @classmethod
    def webhook_connection_filter(cls, request: HttpRequest) -> dict[str, Any] | None:
        """Notifications name their channel: only the connection that owns it is tried."""
        return {"config__channel__id": request.headers.get("X-Goog-Channel-ID", "")}

    @classmethod
    def webhook_delivery_id(cls, request: HttpRequest) -> str:
        # Every notification has the same (empty) body; the channel and message number tell them apart.
        headers = request.headers
        return f"{headers.get('X-Goog-Channel-ID', '')}:{headers.get('X-Goog-Message-Number', '')}"[:64]

    # --- channels (used by the connect/renew services) ----------------------------------------------

    def watch(self, *, channel_id: str, token: str, address: str, ttl: timedelta) -> dict[str, Any]:
        expiration = int((datetime.now(UTC) + ttl).timestamp() * 1000)
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "expiration": expiration,
        }
        answer = call(self.service.events().watch(calendarId=self.calendar_id, body=body))
        return {
            "id": answer["id"],
            "resource_id": answer["resourceId"],
            "expiration": int(answer.get("expiration") or expiration),
        }

    def stop_channel(self, channel: dict[str, Any]) -> None:
        try:
            call(
                self.service.channels().stop(body={"id": channel["id"], "resourceId": channel["resource_id"]})
            )
        except ConnectorError as exc:
            if not _status_in(exc, (404,)):  # already stopped or expired
                raise

    def account_id(self) -> str:
        """The Google account these tokens belong to: its primary calendar's id, which is the account's
        email address (https://developers.google.com/calendar/api/concepts/events-calendars)."""
        return str(call(self.service.calendarList().get(calendarId="primary"))["id"])

    def calendars(self) -> list[dict[str, Any]]:
        """The account's calendars the hub may write to (owner or writer)."""
        answer = call(self.service.calendarList().list(minAccessRole="writer"))
        return [
            {"id": c["id"], "summary": c.get("summary", c["id"]), "primary": bool(c.get("primary"))}
            for c in answer.get("items") or []
        ]


def _status_in(exc: ConnectorError, statuses: tuple[int, ...]) -> bool:
    cause = exc.__cause__
    return isinstance(cause, HttpError) and cause.status_code in statuses


def _when(value: dict[str, Any], zone: str) -> tuple[datetime, bool]:
    """An event time as an aware instant; an all-day ``date`` is midnight in the calendar's zone."""
    if value.get("dateTime"):
        parsed = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(value.get("timeZone") or zone))
        return parsed, False
    day = date.fromisoformat(value["date"])
    return datetime.combine(day, time(), tzinfo=ZoneInfo(value.get("timeZone") or zone)), True
