"""Kareo/Tebra: appointments read with GetAppointments of the SOAP web service 2.1 (platforms.md §5), through
zeep against the service's WSDL.

Kareo has no push and asks integrators to poll rarely: the connection polls at most every 5 minutes (its beat
schedule never runs more often), a full read of the window by StartDate/EndDate first, then only what
changed since the last LastModifiedDate seen. Errors come inside HTTP 200 responses (ErrorResponse,
SecurityResponse) and are mapped here; SOAP Faults, 5xx, timeouts and unreadable bodies are retryable.
Kareo's date strings are practice-local wall times with no offset: the connection's ``config["timezone"]``
(an IANA name) says which zone they are in.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
import zeep
import zeep.exceptions
from zeep.helpers import serialize_object
from zeep.transports import Transport

from lib.timeutil import parse_instant, version_stamp
from scheduler.models import MAX_APPOINTMENT_LENGTH

from ..base import (
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    CursorExpired,
    ExternalEvent,
    FetchResult,
)
from ..http import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from ..models import Connection

WSDL_URL = "https://webservice.kareo.com/services/soap/2.1/KareoServices.svc?wsdl"
BINDING = "{http://www.kareo.com/api/schemas/}BasicHttpBinding_KareoServices"
# Only what the hub needs: the vendor asks for no more than that, and names and notes are PHI we never keep.
FIELDS = (
    "ID",
    "StartDate",
    "EndDate",
    "PatientID",
    "ResourceName1",
    "ServiceLocationName",
    "ConfirmationStatus",
    "Type",
    "LastModifiedDate",
)
# ConfirmationStatus → canonical status (platforms.md §5 mapping; the strings mirror AppointmentStatus [I]).
STATUSES = {
    "scheduled": "scheduled",
    "remindersent": "scheduled",
    "tentative": "scheduled",
    "needsreschedule": "scheduled",
    "unknown": "scheduled",
    "confirmed": "confirmed",
    "checkedin": "confirmed",
    "roomed": "confirmed",
    "readytobeseen": "confirmed",
    "checkedout": "completed",
    "noshow": "no_show",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "rescheduled": "cancelled",
}
TYPES = {"P": "consult", "O": "other", "U": "other"}  # P = patient, O = other, U = unknown [I]
# Re-read a little before the cursor: a change stamped just before the last one seen, but committed after our
# read, must not be missed. Re-read rows are not newer, so they are counted unchanged and not re-applied.
LOOKBACK = timedelta(minutes=10)
# Kareo publishes no limit nor retry hint; a throttled poll waits one polling interval.
THROTTLE_WAIT = 300.0
_THROTTLED = re.compile(r"throttl|too many|rate limit|exceeded", re.IGNORECASE)
# In-band errors that describe the request itself: sending it again cannot succeed.
_PERMANENT = re.compile(r"invalid|not valid|required|must be|not allowed|not supported", re.IGNORECASE)

_clients: dict[str, zeep.Client] = {}
_clients_lock = threading.Lock()


def _client(wsdl_url: str) -> zeep.Client:
    """One parsed WSDL per process and URL: parsing it is the slow part of a call."""
    with _clients_lock:
        client = _clients.get(wsdl_url)
        if client is None:
            transport = Transport(
                session=requests.Session(), timeout=DEFAULT_TIMEOUT[1], operation_timeout=DEFAULT_TIMEOUT[1]
            )
            client = zeep.Client(wsdl_url, transport=transport)
            _clients[wsdl_url] = client
        return client


class KareoConnector(Connector):
    platform = "kareo"
    min_sync_interval = timedelta(minutes=5)
    supports_write = False

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.credentials: dict[str, Any] = connection.credentials or {}

    def fetch(self, *, cursor: str | None, window: tuple[datetime, datetime]) -> FetchResult:
        """A full read of ``window`` by StartDate/EndDate, or every change since ``cursor`` (inclusive)."""
        zone = self._zone()
        if cursor is None:
            # Whole local days (the vendor's documented M/D/YYYY form), filtered by start: begin a day early
            # so an appointment starting before the window but running into it is read, not taken as gone.
            low = (window[0] - MAX_APPOINTMENT_LENGTH).astimezone(zone)
            rows = self._get({"StartDate": _day(low), "EndDate": _day(window[1].astimezone(zone))})
        else:
            try:
                since = parse_instant(cursor)
            except ValueError:
                raise CursorExpired(f"The stored Kareo cursor {cursor!r} is not an instant.") from None
            # Not limited to the window: an appointment moved out of it must reach the hub as well.
            rows = self._get({"FromLastModifiedDate": _wall((since - LOOKBACK).astimezone(zone))})
        events, errors, unreadable = [], [], set()
        anonymous = False
        for row in rows:
            appointment_id = str(row.get("ID") or "").strip()
            if not appointment_id:
                errors.append("<no ID>: Kareo sent an appointment without an ID")
                anonymous = True
                continue
            try:
                events.append(self._event(appointment_id, row, zone))
            except ValueError as exc:  # one unreadable row must not hold back the rest
                errors.append(f"{appointment_id}: {exc}")
                unreadable.add(appointment_id)
        versions = [e.version for e in events if e.version]
        if cursor is not None:
            versions.append(version_stamp(parse_instant(cursor)))
        new_cursor = max(versions, default=None)
        if cursor is None and new_cursor is None:
            new_cursor = version_stamp(datetime.now(UTC))  # nothing in the window yet: changes from now on
        if unreadable or anonymous:
            # Keep the cursor where it was, so the unreadable rows are read again on the next run.
            new_cursor = version_stamp(parse_instant(cursor)) if cursor else None
        return FetchResult(
            events,
            cursor=new_cursor,
            # A row without an ID could be any ledger entry: then nothing may be taken as gone.
            complete_window=window if cursor is None and not anonymous else None,
            errors=errors,
            unreadable_ids=frozenset(unreadable),
        )

    # --- the SOAP call --------------------------------------------------------------------------------

    def _get(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        service = self._service()
        request = {
            "RequestHeader": {
                "CustomerKey": self._credential("customer_key"),
                "User": self._credential("user"),
                "Password": self._credential("password"),
            },
            "Fields": {name: True for name in FIELDS},
            "Filter": filters,
        }
        try:
            result = service.GetAppointments(request=request)
        except zeep.exceptions.Fault as exc:
            raise ConnectorError(f"Kareo answered with a SOAP fault: {exc.message}") from exc
        except zeep.exceptions.TransportError as exc:
            raise ConnectorError(f"Kareo answered HTTP {exc.status_code}.") from exc
        except zeep.exceptions.Error as exc:  # XMLSyntaxError, unexpected elements ...
            raise ConnectorError(f"Kareo sent a response the hub cannot read ({exc}).") from exc
        except requests.Timeout as exc:
            raise ConnectorError("The Kareo call timed out.") from exc
        except requests.RequestException as exc:
            raise ConnectorError(f"The Kareo call failed ({exc}).") from exc
        body = serialize_object(result, dict)
        if not isinstance(body, dict):
            raise ConnectorError("Kareo sent an empty GetAppointments response.")
        self._check(body)
        appointments = body.get("Appointments") or {}
        return list(appointments.get("AppointmentData") or [])

    def _check(self, body: dict[str, Any]) -> None:
        """The in-band verdicts of an HTTP 200 response, as errors."""
        security = body.get("SecurityResponse") or {}
        if not security:
            raise ConnectorError("Kareo's response has no SecurityResponse.")
        # Only an explicit false refuses: every flag is optional in the WSDL, and one third-party Tebra client
        # reports SecurityResultSuccess missing from real answers [S].
        refused = [
            name
            for name in ("CustomerKeyValid", "Authenticated", "Authorized", "SecurityResultSuccess")
            if security.get(name) is False
        ]
        if refused:
            # Wrong customer key, user or password, or an API user lacking permissions (platforms.md §5: the
            # user needs e.g. the System Admin role): only a person with new credentials or rights fixes it.
            missing = (security.get("PermissionsMissing") or {}).get("Permission") or {}
            detail = f"; missing permissions: {', '.join(missing.get('string') or [])}" if missing else ""
            result = security.get("SecurityResult") or "not authenticated"
            raise ConnectorAuthError(
                f"Kareo refused the credentials ({', '.join(refused)} false): {result}{detail}"
            )
        error = body.get("ErrorResponse") or {}
        if error.get("IsError"):
            message = error.get("ErrorMessage") or "unspecified error"
            if _THROTTLED.search(message):
                raise ConnectorError(
                    f"Kareo throttled the poll: {message} (retry after {THROTTLE_WAIT:.0f} s)",
                    retry_after=THROTTLE_WAIT,
                )
            raise ConnectorError(
                f"Kareo reported an error: {message}", permanent=bool(_PERMANENT.search(message))
            )

    def _service(self) -> Any:
        wsdl_url = self.credentials.get("wsdl_url") or WSDL_URL
        try:
            client = _client(wsdl_url)
        except requests.HTTPError as exc:
            raise ConnectorError(f"Kareo's WSDL could not be loaded from {wsdl_url} ({exc}).") from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise ConnectorConfigError(f"The Kareo wsdl_url {wsdl_url!r} is not a URL.") from exc
        except requests.RequestException as exc:
            raise ConnectorError(f"Kareo's WSDL could not be loaded from {wsdl_url} ({exc}).") from exc
        except (zeep.exceptions.Error, ValueError) as exc:
            raise ConnectorError(f"Kareo's WSDL at {wsdl_url} could not be read ({exc}).") from exc
        endpoint = self.credentials.get("endpoint")
        return client.create_service(BINDING, endpoint) if endpoint else client.service

    def _credential(self, name: str) -> str:
        value = self.credentials.get(name)
        if not isinstance(value, str) or not value:
            raise ConnectorConfigError(f"The Kareo credentials lack {name}.")
        return value

    def _zone(self) -> ZoneInfo:
        name = (self.connection.config or {}).get("timezone")
        if not name:
            raise ConnectorConfigError(
                "The Kareo connection needs config['timezone'] (the practice's IANA zone): "
                "Kareo's times carry no offset."
            )
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConnectorConfigError(f"Unknown time zone {name!r} in the Kareo connection.") from exc

    # --- one appointment ------------------------------------------------------------------------------

    def _event(self, appointment_id: str, row: dict[str, Any], zone: ZoneInfo) -> ExternalEvent:
        try:
            start = _local(row["StartDate"], zone)
            end = _local(row["EndDate"], zone)
            version = (
                version_stamp(_local(row["LastModifiedDate"], zone)) if row.get("LastModifiedDate") else ""
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"Kareo sent an appointment the hub cannot read ({exc!r})") from exc
        status_key = re.sub(r"[\s_-]", "", str(row.get("ConfirmationStatus") or "")).lower()
        return ExternalEvent(
            external_id=appointment_id,
            start=start,
            end=end,
            # An unknown (new) status keeps the time held rather than guessing a cancellation.
            status=STATUSES.get(status_key, "scheduled"),
            provider_key=str(row.get("ResourceName1") or "").strip(),
            location_key=str(row.get("ServiceLocationName") or ""),
            patient_key=str(row.get("PatientID") or ""),
            type=TYPES.get(str(row.get("Type") or "").strip().upper(), "consult"),
            version=version,
            raw={k: v for k, v in row.items() if v is not None},
        )


_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")


def _local(value: str, zone: ZoneInfo) -> datetime:
    """A Kareo wall-time string in the practice's zone, as an aware instant (.NET forms, or ISO 8601)."""
    value = value.strip()
    for fmt in _FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _day(moment: datetime) -> str:
    return f"{moment.month}/{moment.day}/{moment.year}"


def _wall(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{_day(moment)} {hour}:{moment:%M:%S} {'AM' if moment.hour < 12 else 'PM'}"
