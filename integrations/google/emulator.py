"""A local emulator of Google Calendar API v3 and Google's OAuth endpoints (platforms.md §1), so the same
client code (google-api-python-client, google-auth) talks to Google in production and to this in the demo
and the tests.

Stdlib only, no Django. ``serve(emulator)`` runs it on 127.0.0.1 in a daemon thread and returns
``(server, base_url)``; ``server.emulator`` is the state, ``server.shutdown()`` stops it. Point the client at
it with ``build("calendar", "v3", static_discovery=True, client_options={"api_endpoint":
f"{base_url}/calendar/v3/"}, ...)``: ``api_endpoint`` replaces the discovery document's ``rootUrl +
servicePath`` (``https://www.googleapis.com/`` + ``calendar/v3/``), so the paths below are the real ones.

Confirmed [C] (the static discovery document of google-api-python-client 2.202, the sync/errors/push guides):

- ``events.list/get/insert/patch/update/delete/watch``, ``channels.stop``, ``calendarList.list/get``,
  ``freeBusy.query``, at their real paths under ``/calendar/v3/``; ``primary`` names the account's calendar.
- list: ``timeMin`` is an exclusive bound on an event's end and ``timeMax`` on its start, both RFC 3339
  with an offset, ``timeMin >= timeMax`` → 400 ``timeRangeEmpty``; ``maxResults`` (default 250, at most 2500);
  ``nextPageToken`` on every page but the last, ``nextSyncToken`` only on the last; a page may be short or
  empty and still have a next page (``page_sizes``); ``syncToken`` combined with ``iCalUID, orderBy,
  privateExtendedProperty, q, sharedExtendedProperty, timeMin, timeMax, updatedMin`` or ``showDeleted=false``
  → 400; incremental results include cancelled events, which carry only ``id`` (plus ``kind``, ``etag``,
  ``status``); cancelled events are otherwise listed only with ``showDeleted=true`` or ``updatedMin``;
  ``orderBy=startTime`` needs ``singleEvents=true``; ``privateExtendedProperty=key=value`` filters.
- An expired sync token → 410 ``fullSyncRequired``.
- Client-chosen event ids: base32hex (``a-v0-9``), 5–1024 characters, else 400 ``invalidResourceId``; an
  id in use → 409 ``duplicate``, including the id of a deleted event (patch it back to ``confirmed``).
- ``events.get`` returns cancelled events too; ``events.delete`` answers 204 with no body.
- Errors in Google's shape ``{"error": {"errors": [{"domain", "reason", "message", ...}], "code",
  "message"}}``; rate limits as 403 ``usageLimits/rateLimitExceeded`` or ``userRateLimitExceeded``, or 429.
- Push: ``events.watch`` registers a channel (``id``, ``type: web_hook``, ``address``, ``token``,
  ``expiration`` in ms) and answers ``api#channel`` with ``resourceId``/``resourceUri``/``expiration``; the
  first notification has ``X-Goog-Resource-State: sync``, each later change of the calendar ``exists``;
  every notification is a POST with an empty body and the headers ``X-Goog-Channel-ID``,
  ``X-Goog-Channel-Token`` (only when set), ``X-Goog-Channel-Expiration`` (an HTTP date),
  ``X-Goog-Resource-ID``, ``X-Goog-Resource-URI``, ``X-Goog-Resource-State``, ``X-Goog-Message-Number``.
  ``channels.stop`` takes ``{"id", "resourceId"}``.
- OAuth: the consent page at ``/o/oauth2/v2/auth`` redirects back with ``code`` and ``state`` (or
  ``error=access_denied``); ``/token`` takes form-encoded ``authorization_code`` (with the PKCE
  ``code_verifier``) and ``refresh_token`` grants and answers ``{"access_token", "expires_in", "scope",
  "token_type", "refresh_token"?}``; a revoked refresh token → 400 ``invalid_grant`` "Token has been expired
  or revoked."; ``/revoke`` revokes a token.

Inferred [I] (no source; configurable where it matters):

- Sync tokens and page tokens are opaque here (``sync_…`` and ``page_…``); a page token holds a snapshot of
  the remaining results, so a change between pages shows up in the next incremental sync rather than moving
  rows between pages. An incremental sync returns every change of the calendar since the token, whatever
  ``timeMin``/``timeMax`` the full read that produced the token had.
- Recurring events: ``add_recurring`` stores the series as instances (ids ``<base>_<YYYYMMDDTHHMMSSZ>`` with
  ``recurringEventId`` and ``originalStartTime``); ``singleEvents=true`` lists the instances,
  ``singleEvents=false`` the master event alone (no RRULE expansion). Cancelling an instance keeps the rest.
- The watch address may be plain ``http://`` (Google requires HTTPS); channel lifetime is ``channel_ttl``
  seconds unless the request asks for less; notifications are sent from one background thread, in order.
- The consent page lists the emulator's accounts (``login_hint`` preselects one); ``auto_approve`` skips it.
  Redirect URIs are checked only when the client registered some. Access tokens live ``token_ttl`` seconds.
- ``patch`` merges nested objects and replaces lists; ``update`` replaces the body (keeping id and created).
- The 401 body for a missing, expired or revoked bearer token; the 410 body for deleting a deleted event.

Faults (``set_fault``) apply to ``/calendar/v3/`` requests, one at a time in the order set, each after
``after`` unaffected requests: ``rate_limit`` (403 with ``reason`` ``rateLimitExceeded`` (default) or
``userRateLimitExceeded``, or ``status=429``; ``retry_after`` adds the header), ``server_error``
(``status`` 500 or 503), ``timeout`` (sleeps ``seconds`` before answering; with ``lost_answer=True`` after
doing the work, so the client times out on a request that succeeded), ``expire_sync_tokens`` (every sync
token issued so far answers 410), ``expire_access_tokens`` (the request gets 401; a refresh fixes it) and
``revoke_tokens`` (every token is revoked: 401, and refreshing gives ``invalid_grant``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import html
import http.client
import json
import queue
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from wsgiref.simple_server import WSGIServer
from zoneinfo import ZoneInfo

from ..emulator_kit import FaultInjection
from ..zocdoc.emulator import serve_app

API_PREFIX = "/calendar/v3"
AUTH_PATH = "/o/oauth2/v2/auth"
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"
DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
SYNC_TOKEN_RESTRICTIONS = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
FAULTS = (
    "rate_limit",
    "server_error",
    "timeout",
    "expire_sync_tokens",
    "expire_access_tokens",
    "revoke_tokens",
)
SCOPE = "https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.readonly"

Response = tuple[int, Any, list[tuple[str, str]]]


class ApiError(Exception):
    """An error in Google's JSON shape."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str = "parameter",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain
        self.location, self.location_type = location, location_type
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location:
            error.update(locationType=self.location_type, location=self.location)
        return {"error": {"errors": [error], "code": self.status, "message": self.message}}


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_rfc3339(value: str, name: str) -> datetime:
    """An instant with an explicit offset (Google refuses one without)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(400, "badRequest", f"Bad Request: invalid {name} {value!r}.", location=name)
    return parsed


def channel_resource_id(calendar_id: str) -> str:
    """The opaque, stable id of a calendar's events collection in channel answers and notifications."""
    return hashlib.sha1(f"{calendar_id}/events".encode()).hexdigest()[:27]


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class GoogleCalendarEmulator(FaultInjection):
    """The emulated accounts, calendars, tokens and channels, and the WSGI application (call the object)."""

    FAULTS = FAULTS

    def __init__(
        self,
        scenario: dict[str, Any] | None = None,
        *,
        token_ttl: float = 3600.0,
        channel_ttl: float = 7 * 24 * 3600.0,
        auto_approve: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        scenario = scenario or {}
        self.client_id = scenario.get("client_id", "hub-client.apps.googleusercontent.com")
        self.client_secret = scenario.get("client_secret", "hub-client-secret")
        self.redirect_uris: list[str] = list(scenario.get("redirect_uris", ()))
        self.token_ttl = token_ttl
        self.channel_ttl = channel_ttl
        self.auto_approve = auto_approve
        self.clock = clock
        self.base_url = ""  # set by serve(): used in resource URIs and htmlLinks
        #: Sizes of successive list pages, cycled (e.g. [0, 2, 1]: an empty first page); None: maxResults.
        self.page_sizes: list[int] | None = scenario.get("page_sizes")
        self.accounts: dict[str, list[str]] = {}  # email -> calendar ids (the first is primary)
        self.calendars: dict[str, dict[str, Any]] = {}  # id -> {"summary", "timeZone", "owner"}
        self.events: dict[str, dict[str, dict[str, Any]]] = {}  # calendar id -> event id -> event
        self.channels: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, query), for assertions
        self.notifications: list[dict[str, Any]] = []  # {"headers", "status"} of every push sent
        self._seq = 0
        self._sync_generation = 0
        self._pages: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._refresh_tokens: dict[str, dict[str, Any]] = {}  # token -> {"account", "revoked"}
        self._access_tokens: dict[str, dict[str, Any]] = {}  # token -> {"account", "expires", "refresh"}
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._outbox: queue.Queue[tuple[dict[str, Any], dict[str, str]] | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, name="google-push", daemon=True)
        self._sender.start()
        for email, spec in scenario.get("accounts", {}).items():
            self.add_account(email, **(spec or {}))
        # Grants that exist already (the demo's seeded connections): refresh token -> account.
        for token, account in scenario.get("refresh_tokens", {}).items():
            self._refresh_tokens[token] = {"account": account, "revoked": False, "scope": SCOPE}
        for channel in scenario.get("channels", ()):
            self.open_channel(
                channel["calendar"],
                channel["id"],
                channel["address"],
                token=channel.get("token", ""),
                announce=False,
            )

    # --- the Python API for tests and the demo ------------------------------------------------------

    def add_account(
        self, email: str, *, time_zone: str = "America/New_York", calendars: list[dict[str, str]] = ()
    ) -> None:
        """An account whose primary calendar has the account's email as its id, plus ``calendars``."""
        with self._lock:
            self.accounts.setdefault(email, [])
            for spec in [{"id": email, "summary": email, "timeZone": time_zone}, *calendars]:
                if spec["id"] not in self.calendars:
                    self.calendars[spec["id"]] = {
                        "summary": spec.get("summary", spec["id"]),
                        "timeZone": spec.get("timeZone", time_zone),
                        "owner": email,
                    }
                    self.events[spec["id"]] = {}
                    self.accounts[email].append(spec["id"])

    def issue_tokens(self, account: str) -> dict[str, Any]:
        """Tokens as if ``account`` had consented (skipping the browser): the token endpoint's answer."""
        with self._lock:
            return self._grant(account, with_refresh=True)

    def revoke(self, refresh_token: str | None = None) -> None:
        """Revoke one refresh token (and its access tokens), or all of them (the user removed the app)."""
        with self._lock:
            for token, grant in self._refresh_tokens.items():
                if refresh_token is None or token == refresh_token:
                    grant["revoked"] = True
            for grant in self._access_tokens.values():
                if refresh_token is None or grant["refresh"] == refresh_token:
                    grant["expires"] = 0.0

    def expire_sync_tokens(self) -> None:
        with self._lock:
            self._sync_generation += 1

    def add_event(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """An event created in Google (by the user, not through the API); notifies the calendar's channels."""
        with self._lock:
            stored = self._insert(calendar_id, event)
            return self._public(stored)

    def add_recorded(self, calendar_id: str, item: dict[str, Any]) -> None:
        """Store a recorded event exactly as Google sent it (stamps kept), as the calendar's latest change."""
        with self._lock:
            self._seq += 1
            self._calendar_events(calendar_id)[item["id"]] = {**copy.deepcopy(item), "_seq": self._seq}
            self._notify(calendar_id)

    def add_recurring(
        self, calendar_id: str, event: dict[str, Any], *, count: int, every: timedelta = timedelta(days=7)
    ) -> list[dict[str, Any]]:
        """A recurring series stored as its instances (see the module docstring)."""
        base_id = event.get("id") or uuid.uuid4().hex
        start, end = _instant(event["start"]), _instant(event["end"])
        zone = event["start"].get("timeZone", "UTC")
        with self._lock:
            master = self._insert(
                calendar_id,
                {**event, "id": base_id, "recurrence": [f"RRULE:FREQ=WEEKLY;COUNT={count}"], "_master": True},
            )
            instances = []
            for n in range(count):
                s, e = start + every * n, end + every * n
                original = {"dateTime": s.isoformat(), "timeZone": zone}
                instance = {
                    **{k: v for k, v in event.items() if k not in ("id", "start", "end")},
                    "id": f"{base_id}_{s.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                    "recurringEventId": master["id"],
                    "originalStartTime": original,
                    "start": {"dateTime": s.isoformat(), "timeZone": zone},
                    "end": {"dateTime": e.isoformat(), "timeZone": zone},
                }
                instances.append(self._public(self._insert(calendar_id, instance, notify=False)))
            return instances

    def update_event(self, calendar_id: str, event_id: str, **changes: Any) -> dict[str, Any]:
        """A change made in Google (moved, declined ...): merged like a patch; notifies the channels."""
        with self._lock:
            return self._public(self._patch(calendar_id, event_id, changes))

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        with self._lock:
            self._delete(calendar_id, event_id)

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        with self._lock:
            return self._public(self._calendar_events(calendar_id)[event_id])

    def api_requests(self, suffix: str = "/events", method: str = "GET") -> list[dict[str, str]]:
        """The queries of the API requests whose path ends with ``suffix``."""
        return [
            q for m, p, q in self.requests if m == method and p.startswith(API_PREFIX) and p.endswith(suffix)
        ]

    def wait_notifications(self, timeout: float = 5.0) -> None:
        """Block until every queued push notification was delivered (or failed)."""
        deadline = time.monotonic() + timeout
        while self._outbox.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    # --- WSGI ---------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", ""))
        query_lists = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        query = {k: v[-1] for k, v in query_lists.items()}
        with self._lock:
            self.requests.append((method, path, query))
        content_type = "application/json; charset=UTF-8"
        try:
            if path == AUTH_PATH and method in ("GET", "POST"):
                status, body, headers = self._consent(method, query, environ)
                content_type = "text/html; charset=utf-8"
            elif path == TOKEN_PATH and method == "POST":
                status, body, headers = self._token(_form(environ))
            elif path == REVOKE_PATH and method == "POST":
                status, body, headers = self._revoke(_form(environ) or query)
            elif path.startswith(API_PREFIX + "/"):
                status, body, headers = self._api(method, path[len(API_PREFIX) :], query, environ)
            else:
                raise ApiError(404, "notFound", "Not Found")
        except ApiError as exc:
            status, body, headers = exc.status, exc.body(), exc.headers
        except OAuthError as exc:
            status, body, headers = exc.status, {"error": exc.error, "error_description": exc.description}, []
        if body is None:
            payload = b""
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", content_type), ("Content-Length", str(len(payload))), *headers],
        )
        return [payload]

    # --- OAuth --------------------------------------------------------------------------------------

    def _consent(self, method: str, query: dict[str, str], environ: dict[str, Any]) -> Response:
        params = _form(environ) if method == "POST" else query
        if params.get("client_id") != self.client_id:
            return 400, "<h1>Error 401: invalid_client</h1><p>The OAuth client was not found.</p>", []
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or (self.redirect_uris and redirect_uri not in self.redirect_uris):
            return 400, "<h1>Error 400: redirect_uri_mismatch</h1>", []
        if params.get("response_type") != "code":
            return 400, "<h1>Error 400: unsupported_response_type</h1>", []
        challenge_method = params.get(
            "code_challenge_method", "plain" if params.get("code_challenge") else ""
        )
        if challenge_method not in ("", "plain", "S256"):
            return 400, "<h1>Error 400: invalid_request</h1><p>Invalid code_challenge_method.</p>", []
        state = params.get("state")
        if method == "POST" or self.auto_approve:
            decision = params.get("decision", "allow")
            account = params.get("account") or params.get("login_hint") or next(iter(self.accounts), "")
            if decision != "allow":
                return _redirect(redirect_uri, {"error": "access_denied", "state": state})
            if account not in self.accounts:
                return 400, "<h1>Unknown account</h1>", []
            code = "4/" + secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = {
                    "account": account,
                    "redirect_uri": redirect_uri,
                    "challenge": params.get("code_challenge", ""),
                    "challenge_method": challenge_method,
                    "scope": params.get("scope", SCOPE),
                }
            return _redirect(
                redirect_uri, {"code": code, "scope": params.get("scope", SCOPE), "state": state}
            )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k not in ("account", "decision")
        )
        hint = params.get("login_hint", "")
        options = "".join(
            f'<option value="{html.escape(a)}"{" selected" if a == hint else ""}>{html.escape(a)}</option>'
            for a in self.accounts
        )
        page = (
            "<!doctype html><html><head><title>Sign in - Google Accounts (emulator)</title></head><body>"
            "<h1>Choose an account</h1><p>Clinic hub wants to see and edit events on your calendars.</p>"
            f'<form method="post" action="{AUTH_PATH}">{hidden}'
            f'<label>Account <select name="account">{options}</select></label>'
            '<button type="submit" name="decision" value="allow">Allow</button>'
            '<button type="submit" name="decision" value="deny">Cancel</button></form></body></html>'
        )
        return 200, page, []

    def _token(self, form: dict[str, str]) -> Response:
        client_ok = hmac.compare_digest(form.get("client_secret", ""), self.client_secret)
        if form.get("client_id") != self.client_id or not client_ok:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                grant = self._codes.pop(form.get("code", ""), None)  # single use
                if grant is None:
                    raise OAuthError(400, "invalid_grant", "Malformed auth code.")
                if grant["redirect_uri"] != form.get("redirect_uri"):
                    raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
                verifier = form.get("code_verifier", "")
                if grant["challenge"]:
                    expected = pkce_challenge(verifier) if grant["challenge_method"] == "S256" else verifier
                    if not verifier or not hmac.compare_digest(expected, grant["challenge"]):
                        raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
                return 200, self._grant(grant["account"], with_refresh=True, scope=grant["scope"]), []
            if grant_type == "refresh_token":
                refresh = self._refresh_tokens.get(form.get("refresh_token", ""))
                if refresh is None or refresh["revoked"]:
                    raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
                body = self._grant(refresh["account"], with_refresh=False, scope=refresh["scope"])
                self._access_tokens[body["access_token"]]["refresh"] = form["refresh_token"]
                return 200, body, []
        raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant_type))

    def _grant(self, account: str, *, with_refresh: bool, scope: str = SCOPE) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(32)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(self.token_ttl) - 1,
            "scope": scope,
            "token_type": "Bearer",
        }
        refresh = None
        if with_refresh:
            refresh = "1//" + secrets.token_urlsafe(32)
            self._refresh_tokens[refresh] = {"account": account, "revoked": False, "scope": scope}
            body["refresh_token"] = refresh
        self._access_tokens[access] = {
            "account": account,
            "expires": time.monotonic() + self.token_ttl,
            "refresh": refresh,
        }
        return body

    def _revoke(self, form: dict[str, str]) -> Response:
        token = form.get("token", "")
        with self._lock:
            if token in self._refresh_tokens:
                self.revoke(token)
            elif token in self._access_tokens:
                self._access_tokens[token]["expires"] = 0.0
            else:
                raise OAuthError(400, "invalid_token", "Token expired or revoked")
        return 200, {}, []

    # --- the Calendar API ---------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, str], environ: dict[str, Any]) -> Response:
        fault = self._next_fault()
        kind = fault and fault["kind"]
        if kind == "rate_limit":
            headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
            if fault.get("status") == 429:
                raise ApiError(
                    429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers=headers
                )
            reason = fault.get("reason", "rateLimitExceeded")
            message = (
                "User Rate Limit Exceeded" if reason == "userRateLimitExceeded" else "Rate Limit Exceeded"
            )
            raise ApiError(403, reason, message, domain="usageLimits", headers=headers)
        if kind == "server_error":
            status = fault.get("status", 500)
            raise ApiError(status, "backendError", "Backend Error")
        if kind == "timeout" and not fault.get("lost_answer"):
            time.sleep(fault.get("seconds", 1.0))
        if kind == "expire_sync_tokens":
            self.expire_sync_tokens()
        if kind == "revoke_tokens":
            self.revoke()
        if kind == "expire_access_tokens":
            with self._lock:
                for grant in self._access_tokens.values():
                    grant["expires"] = 0.0
        account = self._authenticate(environ)
        body = _json_body(environ) if method in ("POST", "PUT", "PATCH") else {}
        with self._lock:
            answer = self._route(method, path, query, body, account)
        if kind == "timeout" and fault.get("lost_answer"):
            time.sleep(fault.get("seconds", 1.0))  # done, but the answer comes too late for the client
        return answer

    def _authenticate(self, environ: dict[str, Any]) -> str:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        with self._lock:
            grant = self._access_tokens.get(token)
            if grant is not None and grant["refresh"] and self._refresh_tokens[grant["refresh"]]["revoked"]:
                grant = None
        if grant is None or grant["expires"] <= time.monotonic():
            raise ApiError(
                401,
                "authError",
                "Invalid Credentials",
                location="Authorization",
                location_type="header",
                headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')],
            )
        return grant["account"]

    def _route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any], account: str
    ) -> Response:
        if path == "/users/me/calendarList" and method == "GET":
            items = [self._calendar_entry(c, n == 0) for n, c in enumerate(self.accounts[account])]
            return 200, {"kind": "calendar#calendarList", "etag": '"p1"', "items": items}, []
        if m := re.fullmatch(r"/users/me/calendarList/([^/]+)", path):
            calendar_id = self._resolve(m[1], account)
            primary = calendar_id == self.accounts[account][0]
            return 200, self._calendar_entry(calendar_id, primary), []
        if path == "/freeBusy" and method == "POST":
            return 200, self._freebusy(body, account), []
        if path == "/channels/stop" and method == "POST":
            channel = self.channels.get(body.get("id", ""))
            if channel is None or channel["resourceId"] != body.get("resourceId"):
                raise ApiError(404, "notFound", f"Channel '{body.get('id')}' not found for project.")
            del self.channels[body["id"]]
            return 204, None, []
        m = re.fullmatch(r"/calendars/([^/]+)/events(?:/([^/]+))?", path)
        if not m:
            raise ApiError(404, "notFound", "Not Found")
        calendar_id = self._resolve(m[1], account)
        event_id = m[2]
        if event_id == "watch" and method == "POST":
            return 200, self._watch(calendar_id, body, query), []
        if event_id is None:
            if method == "GET":
                return 200, self._list(calendar_id, query), []
            if method == "POST":
                return 200, self._public(self._insert(calendar_id, body, strict=True)), []
        else:
            if method == "GET":
                return 200, self._public(self._find(calendar_id, event_id)), []
            if method == "PATCH":
                return 200, self._public(self._patch(calendar_id, event_id, body)), []
            if method == "PUT":
                return 200, self._public(self._update(calendar_id, event_id, body)), []
            if method == "DELETE":
                self._delete(calendar_id, event_id)
                return 204, None, []
        raise ApiError(405, "httpMethodNotAllowed", f"{method} is not allowed here.")

    def _resolve(self, calendar_id: str, account: str) -> str:
        calendar_id = self.accounts[account][0] if calendar_id == "primary" else calendar_id
        if calendar_id not in self.calendars or self.calendars[calendar_id]["owner"] != account:
            raise ApiError(404, "notFound", "Not Found")
        return calendar_id

    def _calendar_entry(self, calendar_id: str, primary: bool) -> dict[str, Any]:
        calendar = self.calendars[calendar_id]
        entry = {
            "kind": "calendar#calendarListEntry",
            "etag": '"1"',
            "id": calendar_id,
            "summary": calendar["summary"],
            "timeZone": calendar["timeZone"],
            "accessRole": "owner",
            "selected": True,
        }
        return {**entry, "primary": True} if primary else entry

    def _calendar_events(self, calendar_id: str) -> dict[str, dict[str, Any]]:
        if calendar_id not in self.events:
            raise KeyError(calendar_id)
        return self.events[calendar_id]

    def _find(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        event = self.events[calendar_id].get(event_id)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        return event

    def _stamp(self, event: dict[str, Any]) -> None:
        self._seq += 1
        event["_seq"] = self._seq
        event["updated"] = rfc3339(self.clock())
        event["etag"] = f'"{3481234567890000 + self._seq}"'

    def _insert(
        self, calendar_id: str, body: dict[str, Any], *, strict: bool = False, notify: bool = True
    ) -> dict[str, Any]:
        events = self._calendar_events(calendar_id)
        event_id = body.get("id") or uuid.uuid4().hex
        if strict and not EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalidResourceId", "Invalid resource id value.")
        if event_id in events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        self._validate_times(body)
        now = rfc3339(self.clock())
        owner = self.calendars[calendar_id]["owner"]
        event = {
            "kind": "calendar#event",
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "creator": {"email": owner, "self": True},
            "organizer": {"email": calendar_id, "self": True},
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
            **copy.deepcopy(body),
            "id": event_id,
        }
        events[event_id] = event
        self._stamp(event)
        if notify:
            self._notify(calendar_id)
        return event

    def _patch(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        event = self._find(calendar_id, event_id)
        merged = _merge(copy.deepcopy(event), copy.deepcopy(body))
        merged["id"] = event_id
        self._validate_times(merged)
        if merged.get("start") != event.get("start") or merged.get("end") != event.get("end"):
            merged["sequence"] = event.get("sequence", 0) + 1
        event.clear()
        event.update(merged)
        self._stamp(event)
        self._notify(calendar_id)
        return event

    def _update(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        event = self._find(calendar_id, event_id)
        kept = {k: event[k] for k in ("kind", "id", "created", "creator", "organizer", "iCalUID", "htmlLink")}
        self._validate_times(body)
        replaced = {
            "status": "confirmed",
            "sequence": event.get("sequence", 0) + 1,
            **copy.deepcopy(body),
            **kept,
        }
        event.clear()
        event.update(replaced)
        self._stamp(event)
        self._notify(calendar_id)
        return event

    def _delete(self, calendar_id: str, event_id: str) -> None:
        event = self._find(calendar_id, event_id)
        if event.get("status") == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        self._stamp(event)
        self._notify(calendar_id)

    @staticmethod
    def _validate_times(body: dict[str, Any]) -> None:
        for name in ("start", "end"):
            value = body.get(name)
            if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
                raise ApiError(
                    400, "required", "Missing end time." if name == "end" else "Missing start time."
                )
        try:
            start, end = _instant(body["start"]), _instant(body["end"])
        except ValueError:
            raise ApiError(400, "invalid", "Invalid start or end time.") from None
        if end < start:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", location="end")

    @staticmethod
    def _public(event: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}

    def _list(self, calendar_id: str, query: dict[str, str]) -> dict[str, Any]:
        page_token = query.get("pageToken")
        if page_token:
            with self._lock:
                state = self._pages.pop(page_token, None)
            if state is None or state["calendar"] != calendar_id:
                raise ApiError(400, "invalid", "Invalid page token value.", location="pageToken")
            return self._page(calendar_id, state)
        max_results = _int(query, "maxResults", DEFAULT_MAX_RESULTS, 1, 10**9)
        max_results = min(max_results, MAX_MAX_RESULTS)
        single = query.get("singleEvents", "false").lower() == "true"
        if query.get("orderBy") and query["orderBy"] not in ("startTime", "updated"):
            raise ApiError(400, "invalid", "Invalid value for orderBy.", location="orderBy")
        if query.get("orderBy") == "startTime" and not single:
            raise ApiError(
                400, "badRequest", "The requested ordering is not available for the particular query."
            )
        sync_token = query.get("syncToken")
        if sync_token:
            used = [name for name in SYNC_TOKEN_RESTRICTIONS if query.get(name)]
            if used or query.get("showDeleted", "").lower() == "false":
                raise ApiError(
                    400,
                    "invalid",
                    "Sync token cannot be used with other request restrictions.",
                    location="syncToken",
                )
            since = self._check_sync_token(sync_token, calendar_id)
            rows = [e for e in self.events[calendar_id].values() if e["_seq"] > since]
            rows = [e for e in rows if single or not e.get("recurringEventId")]
            rows = [e for e in rows if not single or not e.get("_master")]
            rows.sort(key=lambda e: e["_seq"])
            return self._page(calendar_id, {"rows": rows, "max": max_results, "seq": self._seq, "n": 0})
        time_min = parse_rfc3339(query["timeMin"], "timeMin") if query.get("timeMin") else None
        time_max = parse_rfc3339(query["timeMax"], "timeMax") if query.get("timeMax") else None
        if time_min and time_max and time_min >= time_max:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax")
        updated_min = parse_rfc3339(query["updatedMin"], "updatedMin") if query.get("updatedMin") else None
        show_deleted = query.get("showDeleted", "").lower() == "true" or updated_min is not None
        rows = []
        for event in self.events[calendar_id].values():
            if event.get("_master") if single else event.get("recurringEventId"):
                continue
            if event["status"] == "cancelled" and not show_deleted:
                continue
            start, end = (
                _instant(event["start"], self.calendars[calendar_id]["timeZone"]),
                _instant(event["end"], self.calendars[calendar_id]["timeZone"]),
            )
            if time_min and not end > time_min:
                continue
            if time_max and not start < time_max:
                continue
            if updated_min and _parse_stamp(event["updated"]) < updated_min:
                continue
            if query.get("iCalUID") and event.get("iCalUID") != query["iCalUID"]:
                continue
            if query.get("q") and query["q"].lower() not in json.dumps(event.get("summary", "")).lower():
                continue
            wanted = query.get("privateExtendedProperty")
            if wanted:
                key, _, value = wanted.partition("=")
                if ((event.get("extendedProperties") or {}).get("private") or {}).get(key) != value:
                    continue
            rows.append(event)
        if query.get("orderBy") == "startTime":
            rows.sort(key=lambda e: (_instant(e["start"], "UTC"), e["id"]))
        elif query.get("orderBy") == "updated":
            rows.sort(key=lambda e: e["_seq"])
        else:
            rows.sort(key=lambda e: e["id"])
        return self._page(calendar_id, {"rows": rows, "max": max_results, "seq": self._seq, "n": 0})

    def _page(self, calendar_id: str, state: dict[str, Any]) -> dict[str, Any]:
        size = state["max"]
        if self.page_sizes:
            size = min(size, self.page_sizes[state["n"] % len(self.page_sizes)])
        rows, rest = state["rows"][:size], state["rows"][size:]
        calendar = self.calendars[calendar_id]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"p{self._seq}"',
            "summary": calendar["summary"],
            "updated": rfc3339(self.clock()),
            "timeZone": calendar["timeZone"],
            "accessRole": "owner",
            "defaultReminders": [],
            "items": [self._listed(e) for e in rows],
        }
        # A short page still leads on while rows remain; "empty page, next page" happens too.
        if rest or (self.page_sizes and size == 0 and state["rows"]):
            token = "page_" + secrets.token_urlsafe(16)
            self._pages[token] = {**state, "rows": rest, "calendar": calendar_id, "n": state["n"] + 1}
            body["nextPageToken"] = token
        else:
            body["nextSyncToken"] = self._sync_token(calendar_id, state["seq"])
        return body

    def _listed(self, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] != "cancelled":
            return self._public(event)
        # A deleted event is guaranteed to carry only its id; a cancelled instance keeps its series link.
        minimal = {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
        if event.get("recurringEventId"):
            minimal.update(
                recurringEventId=event["recurringEventId"], originalStartTime=event["originalStartTime"]
            )
        return minimal

    def _sync_token(self, calendar_id: str, seq: int) -> str:
        raw = json.dumps([calendar_id, seq, self._sync_generation]).encode()
        return "sync_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _check_sync_token(self, token: str, calendar_id: str) -> int:
        try:
            raw = token.removeprefix("sync_")
            calendar, seq, generation = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except ValueError:
            raise ApiError(400, "invalid", "Invalid sync token value.", location="syncToken") from None
        if calendar != calendar_id or generation != self._sync_generation:
            raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
        return int(seq)

    def _freebusy(self, body: dict[str, Any], account: str) -> dict[str, Any]:
        time_min = parse_rfc3339(body.get("timeMin", ""), "timeMin")
        time_max = parse_rfc3339(body.get("timeMax", ""), "timeMax")
        if time_min >= time_max:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax")
        calendars: dict[str, Any] = {}
        for item in body.get("items", []):
            requested = item.get("id", "")
            try:
                calendar_id = self._resolve(requested, account)
            except ApiError:
                calendars[requested] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            zone = self.calendars[calendar_id]["timeZone"]
            busy = []
            for event in self.events[calendar_id].values():
                if (
                    event["status"] == "cancelled"
                    or event.get("_master")
                    or event.get("transparency") == "transparent"
                ):
                    continue
                start, end = _instant(event["start"], zone), _instant(event["end"], zone)
                if start < time_max and end > time_min:
                    busy.append((max(start, time_min), min(end, time_max)))
            busy.sort()
            calendars[requested] = {"busy": [{"start": rfc3339(s), "end": rfc3339(e)} for s, e in busy]}
        return {
            "kind": "calendar#freeBusy",
            "timeMin": rfc3339(time_min),
            "timeMax": rfc3339(time_max),
            "calendars": calendars,
        }

    # --- push notifications -------------------------------------------------------------------------

    def _watch(self, calendar_id: str, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        channel_id = body.get("id", "")
        if not channel_id or len(channel_id) > 64 or not re.fullmatch(r"[A-Za-z0-9\-_+/=]+", channel_id):
            raise ApiError(400, "invalid", "Invalid channel id.", location="id")
        if body.get("type") not in ("web_hook", "webhook"):
            raise ApiError(400, "invalid", "Invalid channel type.", location="type")
        if not str(body.get("address", "")).startswith(("https://", "http://")):
            raise ApiError(400, "invalid", "Invalid channel address.", location="address")
        if channel_id in self.channels:
            raise ApiError(400, "channelIdNotUnique", "Channel id not unique.")
        return self.open_channel(
            calendar_id,
            channel_id,
            body["address"],
            token=body.get("token", ""),
            expiration=body.get("expiration"),
        )

    def open_channel(
        self,
        calendar_id: str,
        channel_id: str,
        address: str,
        *,
        token: str = "",
        expiration: int | str | None = None,
        announce: bool = True,
    ) -> dict[str, Any]:
        """Register a push channel (as events.watch does); returns the api#channel answer."""
        now_ms = int(self.clock().timestamp() * 1000)
        latest = now_ms + int(self.channel_ttl * 1000)
        expires = min(latest, int(expiration)) if expiration else latest
        resource_id = channel_resource_id(calendar_id)
        resource_uri = f"{self.base_url}{API_PREFIX}/calendars/{quote(calendar_id, safe='')}/events?alt=json"
        channel = {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": resource_id,
            "resourceUri": resource_uri,
            "expiration": str(expires),
        }
        if token:
            channel["token"] = token
        with self._lock:
            self.channels[channel_id] = {
                **channel,
                "calendar": calendar_id,
                "address": address,
                "messages": 0,
            }
            if announce:
                self._enqueue(self.channels[channel_id], "sync")
        return channel

    def _notify(self, calendar_id: str) -> None:
        now_ms = self.clock().timestamp() * 1000
        for channel in list(self.channels.values()):
            if channel["calendar"] != calendar_id:
                continue
            if int(channel["expiration"]) <= now_ms:
                del self.channels[channel["id"]]  # expired: Google stops sending
                continue
            self._enqueue(channel, "exists")

    def _enqueue(self, channel: dict[str, Any], state: str) -> None:
        channel["messages"] += 1
        expiration = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
        headers = {
            "X-Goog-Channel-ID": channel["id"],
            "X-Goog-Channel-Expiration": format_datetime(expiration, usegmt=True),
            "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-URI": channel["resourceUri"],
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel["messages"]),
        }
        if channel.get("token"):
            headers["X-Goog-Channel-Token"] = channel["token"]
        self._outbox.put(({"address": channel["address"]}, headers))

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            try:
                if item is None:
                    return
                target, headers = item
                status = _post_empty(target["address"], headers)
                with self._lock:
                    self.notifications.append(
                        {"address": target["address"], "headers": headers, "status": status}
                    )
            finally:
                self._outbox.task_done()

    def close(self) -> None:
        self._outbox.put(None)


def _post_empty(address: str, headers: dict[str, str]) -> int | None:
    """POST an empty body with the headers spelled exactly as given (urllib would recapitalise them)."""
    url = urlsplit(address)
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = cls(url.hostname or "", url.port, timeout=10)
    try:
        connection.request(
            "POST", url.path + (f"?{url.query}" if url.query else ""), b"", {**headers, "Content-Length": "0"}
        )
        return connection.getresponse().status
    except OSError:
        return None  # not delivered; Google would retry a while, the hub's polling catches up
    finally:
        connection.close()


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


def _instant(value: dict[str, Any], zone: str = "UTC") -> datetime:
    """An event time as an instant: ``dateTime``, or an all-day ``date`` at midnight in the calendar zone."""
    if value.get("dateTime"):
        parsed = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(value.get("timeZone") or zone))
        return parsed
    day = date.fromisoformat(value["date"])
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(value.get("timeZone") or zone))


def _parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "invalid", f"Invalid value for {name}.", location=name)
    return value


def _form(environ: dict[str, Any]) -> dict[str, str]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length).decode() if length else ""
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "parseError", "Parse Error") from None
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return body


def _redirect(uri: str, params: dict[str, Any]) -> Response:
    sep = "&" if "?" in uri else "?"
    location = uri + sep + urlencode({k: v for k, v in params.items() if v is not None})
    return 302, "", [("Location", location)]


def serve(emulator: GoogleCalendarEmulator | None = None, *, port: int = 0) -> tuple[WSGIServer, str]:
    """Serve ``emulator`` (a fresh one by default); ``server.emulator`` gives tests its state."""
    emulator = emulator or GoogleCalendarEmulator()
    server, base_url = serve_app(emulator, port=port)
    emulator.base_url = base_url
    for channel in emulator.channels.values():  # preloaded before the address was known
        calendar = quote(channel["calendar"], safe="")
        channel["resourceUri"] = f"{base_url}{API_PREFIX}/calendars/{calendar}/events?alt=json"
    server.emulator = emulator  # type: ignore[attr-defined]
    return server, base_url
