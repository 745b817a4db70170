"""A local emulator of the Zocdoc developer API (platforms.md §4), for contract tests over real HTTP.

Stdlib only (wsgiref, json, hmac), no Django. ``serve(emulator)`` runs it on 127.0.0.1 in a daemon thread and
returns ``(server, base_url)``; ``server.emulator`` is the state, ``server.shutdown()`` stops it.

Implemented as documented [C]:

- ``POST /oauth/token``: client credentials in a JSON body (grant_type, client_id, client_secret, audience).
- ``GET /v1/appointments``: ``page`` 0–10, ``page_size`` 1–100 (else 400), never more than 1,000 results;
  filters ``start_time_utc_min/max``, ``created_time_utc_min/max``, ``last_modified_time_utc_min/max``,
  ``statuses``, ``provider_ids``, ``location_ids``, ``practice_ids`` (CSV) and ``developer_patient_id``;
  ``sort_by`` (start_time_utc, created_time_utc, last_modified_time_utc) and ``sort_direction`` (default:
  start time descending); the envelope ``request_id, page, page_size, total_count, next_url, data``.
- ``GET /v1/appointments/{id}`` (404 when unknown); 400/404 bodies as ``ErrorResult``
  ``{"request_id", "error_type": "api_error|invalid_request", "errors": [{"field", "message"}]}``.
- Webhook payloads (``webhook_request``) in the documented shape; ``event_type`` ``appointment_updated``,
  ``appointment_update_type`` created|updated|cancelled.

Inferred [I] (no source found; configurable where it matters):

- The token response (Auth0-style, lifetime ``token_ttl``) and the token endpoint's 400/401/403 bodies.
- 401 with a small JSON body for an unknown or expired bearer token (the spec declares no 401 schema).
- ``next_url`` is null on the last page, otherwise the same query with ``page + 1``; ``total_count`` counts
  every match (not capped at 1,000); min/max bounds are inclusive; sort ties break on appointment_id; the
  default page_size is 10; a single appointment is returned as ``{"request_id", "data": {...}}``.
- Instants in queries parse leniently: "2024-01-01 00:00:00+00:00", ISO 8601 with Z or fractions, naive = UTC,
  and "+00:00" that an unencoded query turned into " 00:00".
- The webhook signature: HMAC-SHA256 of the raw body with the base64-decoded key, hex digest, in
  ``WEBHOOK_SIGNATURE_HEADER``. The real header name and algorithm were not captured.
- 429/5xx bodies; ``last_modified_time_utc`` stamps written by ``update_appointment`` carry microseconds.

Faults (``set_fault``) apply to ``/v1/`` requests, one at a time in the order set, each after ``after``
unaffected requests: ``rate_limit`` (429 + Retry-After ``retry_after``), ``server_error`` (``status`` 500 or
503), ``timeout`` (sleeps ``seconds`` before answering), ``malformed`` (200 with invalid JSON) and
``expire_tokens`` (every issued token becomes invalid, so the request gets 401).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..emulator_kit import FaultInjection

# [I] The real header name was not captured (platforms.md §4 "Webhook" and §12, question 1).
WEBHOOK_SIGNATURE_HEADER = "X-Zocdoc-Signature"
AUDIENCE = "https://api-developer.zocdoc.com/"
MAX_RESULTS = 1000
MAX_PAGE = 10
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10
STATUSES = (
    "pending_booking",
    "confirmed",
    "booking_failed",
    "cancelled",
    "no_show",
    "pending_reschedule",
    "rescheduled",
    "reschedule_failed",
)
UPDATE_TYPES = ("created", "updated", "cancelled")
# Query prefix -> the appointment field it bounds.
TIME_FIELDS = {
    "start_time_utc": "start_time",
    "created_time_utc": "created_time_utc",
    "last_modified_time_utc": "last_modified_time_utc",
}
FAULTS = ("rate_limit", "server_error", "timeout", "malformed", "expire_tokens")

Response = tuple[int, Any, list[tuple[str, str]]]


def parse_instant(value: str) -> datetime:
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.fromisoformat(re.sub(r" (\d{2}:?\d{2})$", r"+\1", value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def appointment_json(start: datetime | str, **fields: Any) -> dict[str, Any]:
    """An appointment in the documented list shape, with plausible defaults for what is not given."""
    start_time = start if isinstance(start, str) else start.isoformat(timespec="seconds")
    return {
        "appointment_id": str(uuid.uuid4()),
        "appointment_status": "confirmed",
        "developer_patient_id": None,
        "is_provider_resource": False,
        "location_phone_number": "+15555550100",
        "confirmation_type": "auto",
        "start_time": start_time,
        "created_time_utc": "2025-02-20T18:03:11Z",
        "last_modified_time_utc": "2025-02-21T09:15:42Z",
        "provider_location_id": "pr_abc123-def456_wxyz7890|lo_abc123-def456_wxyz7890",
        "practice_id": "pt_abc123-def456_wxyz7890",
        "visit_reason_id": "pc_FRO-18leckytNKtruw5dLR",
        "visit_type": "in_person",
        "patient_type": "existing",
        "notes": None,
        "cancellation_reason": None,
        "source": "zocdoc",
        **fields,
    }


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, field: str | None = None, error_type: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.error_type = error_type or ("invalid_request" if status < 500 else "api_error")


class ZocdocEmulator(FaultInjection):
    """The emulated platform's state and its WSGI application (call the object)."""

    FAULTS = FAULTS

    def __init__(
        self,
        scenario: dict[str, Any] | None = None,
        *,
        token_ttl: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        scenario = scenario or {}
        self.client_id = scenario.get("client_id", "zocdoc-client")
        self.client_secret = scenario.get("client_secret", "zocdoc-secret")
        self.audience = scenario.get("audience", AUDIENCE)
        # Random unless the scenario names one: a webhook key is never a constant someone could read here.
        self.webhook_key = scenario.get("webhook_key") or base64.b64encode(secrets.token_bytes(32)).decode()
        self.token_ttl = token_ttl
        self.clock = clock
        self.appointments: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, query), for assertions
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        for appointment in scenario.get("appointments", ()):
            self.add_appointment(appointment)

    # --- the Python API for tests -------------------------------------------------------------------

    def add_appointment(self, appointment: dict[str, Any]) -> dict[str, Any]:
        appointment = copy.deepcopy(appointment)
        if appointment["appointment_status"] not in STATUSES:
            raise ValueError(f"Unknown Zocdoc status {appointment['appointment_status']!r}.")
        with self._lock:
            self.appointments[appointment["appointment_id"]] = appointment
        return copy.deepcopy(appointment)

    def add_appointments(self, appointments: Iterable[dict[str, Any]]) -> None:
        for appointment in appointments:
            self.add_appointment(appointment)

    def update_appointment(self, appointment_id: str, **changes: Any) -> dict[str, Any]:
        """Apply ``changes`` and stamp ``last_modified_time_utc`` (unless it is one of them)."""
        with self._lock:
            appointment = self.appointments[appointment_id]
            appointment.update({"last_modified_time_utc": stamp(self.clock()), **changes})
            return copy.deepcopy(appointment)

    def sign(self, body: bytes) -> str:
        return hmac.new(base64.b64decode(self.webhook_key), body, hashlib.sha256).hexdigest()

    def webhook_request(
        self,
        appointment_id: str,
        update_type: str = "updated",
        *,
        event_type: str = "appointment_updated",
        changed_attributes: Iterable[str] = ("appointment.start_time",),
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers Zocdoc would POST to the registered webhook URL."""
        if update_type not in UPDATE_TYPES:
            raise ValueError(f"Unknown update type {update_type!r}; one of {UPDATE_TYPES}.")
        now = stamp(self.clock())
        payload = {
            "data": {
                "appointment_data": {
                    "appointment_id": appointment_id,
                    "appointment_updated_timestamp": now,
                    "appointment_update_type": update_type,
                    "changed_attributes": [{"attribute_path": path} for path in changed_attributes],
                },
                "data_type": "appointment_data",
            },
            "event_type": event_type,
            "webhook_timestamp": now,
        }
        body = json.dumps(payload).encode()
        return body, {"Content-Type": "application/json", WEBHOOK_SIGNATURE_HEADER: self.sign(body)}

    def api_requests(self, path: str = "/v1/appointments") -> list[dict[str, str]]:
        return [query for _, p, query in self.requests if p == path]

    # --- WSGI ---------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = {
            k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()
        }
        with self._lock:
            self.requests.append((method, path, query))
        request_id = str(uuid.uuid4())
        try:
            if path == "/oauth/token" and method == "POST":
                status, body, headers = self._token(environ)
            elif path.startswith("/v1/"):
                status, body, headers = self._api(method, path, query, environ, request_id)
            else:
                raise ApiError(404, f"No route for {method} {path}.")
        except ApiError as exc:
            error = {"message": exc.message, **({"field": exc.field} if exc.field else {})}
            status, headers = exc.status, []
            body = {"request_id": request_id, "error_type": exc.error_type, "errors": [error]}
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *headers],
        )
        return [payload]

    def _token(self, environ: dict[str, Any]) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            return 400, {"error": "invalid_request", "error_description": "Invalid JSON body."}, []
        if body.get("grant_type") != "client_credentials":
            return (
                400,
                {"error": "unsupported_grant_type", "error_description": "Unsupported grant type."},
                [],
            )
        secret_ok = hmac.compare_digest(str(body.get("client_secret", "")), self.client_secret)
        if body.get("client_id") != self.client_id or not secret_ok:
            return 401, {"error": "access_denied", "error_description": "Unauthorized"}, []
        if body.get("audience") != self.audience:
            description = f"Service not enabled within domain: {body.get('audience')}"
            return 403, {"error": "access_denied", "error_description": description}, []
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        scope = "external.appointment.read external.appointment.write"
        return (
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.token_ttl),
                "scope": scope,
            },
            [],
        )

    def _api(
        self, method: str, path: str, query: dict[str, str], environ: dict[str, Any], request_id: str
    ) -> Response:
        fault = self._next_fault()
        kind = fault and fault["kind"]
        if kind == "rate_limit":
            retry_after = [("Retry-After", str(fault.get("retry_after", 1)))]
            return 429, {"request_id": request_id, "error_type": "api_error", "errors": []}, retry_after
        if kind == "server_error":
            status = fault.get("status", 500)
            headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
            body = {
                "request_id": request_id,
                "error_type": "api_error",
                "errors": [{"message": "Internal error"}],
            }
            return status, body, headers
        if kind == "malformed":
            return 200, b'{"request_id": "' + request_id.encode() + b'", "data": [{"appointment_id": ', []
        if kind == "timeout":
            time.sleep(fault.get("seconds", 1.0))
        if kind == "expire_tokens":
            with self._lock:
                self._tokens.clear()

        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            return 401, {"message": "Unauthorized"}, [("WWW-Authenticate", "Bearer")]
        if method != "GET":
            raise ApiError(405, f"{method} is not supported by this emulator.")
        if path == "/v1/appointments":
            return 200, self._list(query, environ, request_id), []
        match = re.fullmatch(r"/v1/appointments/([^/]+)", path)
        if not match:
            raise ApiError(404, f"No route for {path}.")
        with self._lock:
            appointment = self.appointments.get(match[1])
        if appointment is None:
            raise ApiError(404, f"Appointment {match[1]} was not found.", field="appointment_id")
        return 200, {"request_id": request_id, "data": copy.deepcopy(appointment)}, []

    def _list(self, query: dict[str, str], environ: dict[str, Any], request_id: str) -> dict[str, Any]:
        page = _int_param(query, "page", 0, 0, MAX_PAGE)
        page_size = _int_param(query, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        with self._lock:
            rows = [copy.deepcopy(a) for a in self.appointments.values()]

        for prefix, field in TIME_FIELDS.items():
            low, high = _instant_param(query, f"{prefix}_min"), _instant_param(query, f"{prefix}_max")
            if low or high:
                rows = [
                    a
                    for a in rows
                    if (not low or parse_instant(a[field]) >= low)
                    and (not high or parse_instant(a[field]) <= high)
                ]
        csv_filters: dict[str, Callable[[dict[str, Any]], Any]] = {
            "statuses": lambda a: a["appointment_status"],
            "provider_ids": lambda a: a["provider_location_id"].partition("|")[0],
            "location_ids": lambda a: a["provider_location_id"].partition("|")[2],
            "practice_ids": lambda a: a["practice_id"],
            "developer_patient_id": lambda a: a.get("developer_patient_id"),
        }
        for name, value_of in csv_filters.items():
            if query.get(name):
                wanted = {v.strip() for v in query[name].split(",") if v.strip()}
                if name == "statuses" and wanted - set(STATUSES):
                    raise ApiError(400, f"Unknown status {sorted(wanted - set(STATUSES))}.", field=name)
                rows = [a for a in rows if value_of(a) in wanted]

        sort_by = query.get("sort_by") or "start_time_utc"
        direction = query.get("sort_direction") or "desc"
        if sort_by not in TIME_FIELDS:
            raise ApiError(400, f"sort_by must be one of {', '.join(TIME_FIELDS)}.", field="sort_by")
        if direction not in ("asc", "desc"):
            raise ApiError(400, "sort_direction must be asc or desc.", field="sort_direction")
        field = TIME_FIELDS[sort_by]
        rows.sort(key=lambda a: (parse_instant(a[field]), a["appointment_id"]), reverse=direction == "desc")

        reachable = min(len(rows), MAX_RESULTS)
        offset = page * page_size
        next_url = None
        if offset + page_size < reachable and page < MAX_PAGE:
            host = environ.get("HTTP_HOST") or "{SERVER_NAME}:{SERVER_PORT}".format(**environ)
            next_url = f"http://{host}/v1/appointments?{urlencode({**query, 'page': page + 1})}"
        return {
            "request_id": request_id,
            "page": page,
            "page_size": page_size,
            "total_count": len(rows),
            "next_url": next_url,
            "data": rows[offset : min(offset + page_size, reachable)],
        }


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}.", field=name)
    return value


def _instant_param(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise ApiError(400, f"{name} is not a valid instant: {raw!r}.", field=name) from None


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False  # a "timeout" fault may still be sleeping when a test shuts the server down


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_app(app: Callable[..., Any], *, port: int = 0) -> tuple[WSGIServer, str]:
    """Run a WSGI app on 127.0.0.1 in a daemon thread; return the server and its base URL."""
    server = make_server("127.0.0.1", port, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="wsgi-emulator", daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}"


def serve(emulator: ZocdocEmulator | None = None, *, port: int = 0) -> tuple[WSGIServer, str]:
    """Serve ``emulator`` (a fresh one by default); ``server.emulator`` gives tests its state."""
    emulator = emulator or ZocdocEmulator()
    server, base_url = serve_app(emulator, port=port)
    server.emulator = emulator  # type: ignore[attr-defined]
    return server, base_url
