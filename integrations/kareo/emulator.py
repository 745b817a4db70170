"""A local emulator of the Kareo/Tebra SOAP web service 2.1 (platforms.md §5), for contract tests over real
HTTP with a real SOAP client (zeep).

Stdlib only (wsgiref, xml.etree), no Django. ``serve(emulator)`` runs it on 127.0.0.1 in a daemon thread and
returns ``(server, base_url)``; ``server.emulator`` is the state, ``server.shutdown()`` stops it. The service
lives at ``<base>/services/soap/2.1/KareoServices.svc`` (the real path); ``?wsdl`` returns its WSDL.

Confirmed [C] (from the real WSDL, repo CarrieKroutil/KareoTool, and the vendor FAQ):

- The WSDL served is the real one trimmed to the GetAppointments operation: target namespace
  ``http://www.kareo.com/api/schemas/``, service ``KareoServices``, port and binding
  ``BasicHttpBinding_KareoServices``, portType ``KareoServices``, messages
  ``KareoServices_GetAppointments_Input/OutputMessage``, SOAPAction
  ``http://www.kareo.com/api/schemas/KareoServices/GetAppointments``, document/literal SOAP 1.1. Types keep
  their real names and element order (alphabetical, as WCF emits them): RequestBase, RequestHeader
  (ClientVersion, CustomerKey, Password, User), GetAppointmentsReq (RequestHeader, Fields, Filter),
  AppointmentFieldsToReturn, AppointmentFilter, GetAppointmentsResp (ErrorResponse, SecurityResponse,
  Appointments), ErrorResponse, SecurityResponse, PermissionsMissing, PracticiesAuthorized (sic),
  ArrayOfAppointmentData, AppointmentData (every field xs:string), ArrayOfstring/ArrayOfint.
- Credentials travel in the body's RequestHeader; there is no HTTP auth. Errors come in-band with HTTP 200:
  ``ErrorResponse.IsError``/``ErrorMessage`` and ``SecurityResponse`` (Authenticated, Authorized,
  CustomerKeyValid, SecurityResult, SecurityResultSuccess).
- Fields: only the fields set to true are returned. Filter: StartDate/EndDate, FromLastModifiedDate/
  ToLastModifiedDate, FromCreatedDate/ToCreatedDate, ResourceName, PracticeName, ServiceLocationName,
  ConfirmationStatus, PatientID, Type, AppointmentReason (as strings). No pagination.
- There is no push: the data changes only when polled.

Inferred [I] (no source found; configurable where it matters):

- Date strings: values are practice-local .NET ``ToString()`` style ``M/D/YYYY h:mm:ss AM``; filter strings
  accept ``M/D/YYYY`` (a whole day) or ``M/D/YYYY h:mm:ss AM`` (an instant), and ISO 8601. StartDate/EndDate
  select appointments whose start falls in [StartDate, EndDate] (a date-only EndDate covers the whole day);
  From/To bounds are inclusive.
- ConfirmationStatus strings mirror the AppointmentStatus enum names (Scheduled, Confirmed, CheckedIn, ...).
- Bad credentials: SecurityResult "Invalid user name and/or password" (S: a third-party client) or
  "Invalid customer key", Authenticated/CustomerKeyValid false, no Appointments, still HTTP 200.
- Throttling: Kareo publishes no numbers (a third-party client cites 1 call/second for GetAppointments [S]);
  here a call within ``min_interval`` seconds of the previous one per customer key gets IsError=true with
  ``THROTTLE_MESSAGE`` (and no appointments).
- A malformed envelope or an unknown SOAPAction gets a SOAP 1.1 Fault with HTTP 500.

Faults (``set_fault``), one at a time in the order set, each after ``after`` unaffected calls:
``throttle`` (IsError=true with the throttling message), ``error`` (IsError=true with ``message``),
``server_error`` (a SOAP Fault with HTTP 500), ``timeout`` (sleeps ``seconds`` before answering) and
``malformed`` (HTTP 200 with a truncated XML body) and ``canned`` (HTTP 200 with ``body``, e.g. a recorded
response, as it is; the element order of a hand-written body is not checked).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from ..emulator_kit import FaultInjection
from ..zocdoc.emulator import serve_app

NS = "http://www.kareo.com/api/schemas/"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE_PATH = "/services/soap/2.1/KareoServices.svc"
SOAP_ACTION = "http://www.kareo.com/api/schemas/KareoServices/GetAppointments"
THROTTLE_MESSAGE = "Request was throttled. Please wait before polling GetAppointments again."  # [I]
BAD_LOGIN = "Invalid user name and/or password"  # [S]
BAD_CUSTOMER_KEY = "Invalid customer key"  # [I]
FAULTS = ("throttle", "error", "server_error", "timeout", "malformed", "canned")
STATUSES = (
    "Unknown",
    "Scheduled",
    "ReminderSent",
    "Confirmed",
    "CheckedIn",
    "Roomed",
    "CheckedOut",
    "NeedsReschedule",
    "ReadyToBeSeen",
    "NoShow",
    "Cancelled",
    "Rescheduled",
    "Tentative",
)

# AppointmentFieldsToReturn / AppointmentData, in the WSDL's order [C].
APPOINTMENT_FIELDS = (
    "AllDay",
    "AppointmentReason1",
    "AppointmentReason10",
    *(f"AppointmentReason{n}" for n in range(2, 10)),
    "AuthorizationEndDate",
    "AuthorizationID",
    "AuthorizationInsurancePlan",
    "AuthorizationNumber",
    "AuthorizationStartDate",
    "ConfirmationStatus",
    "CreatedDate",
    "EndDate",
    "ID",
    "LastModifiedDate",
    "Notes",
    "PatientCaseID",
    "PatientCaseName",
    "PatientCasePayerScenario",
    "PatientFullName",
    "PatientID",
    "PracticeID",
    "PracticeName",
    "Recurring",
    "ResourceName1",
    "ResourceName10",
    *(f"ResourceName{n}" for n in range(2, 10)),
    "ServiceLocationName",
    "StartDate",
    "Type",
)
# AppointmentFilter, in the WSDL's order [C].
FILTER_FIELDS = (
    "AppointmentReason",
    "ConfirmationStatus",
    "EndDate",
    "FromCreatedDate",
    "FromLastModifiedDate",
    "PatientCasePayerScenario",
    "PatientFullName",
    "PatientID",
    "PracticeName",
    "ResourceName",
    "ServiceLocationName",
    "StartDate",
    "TimeZoneOffsetFromGMT",
    "ToCreatedDate",
    "ToLastModifiedDate",
    "Type",
)
# Filters that compare a field for equality (case-insensitive, as SQL Server collations do [I]).
EQUALITY_FILTERS = {
    "AppointmentReason": "AppointmentReason1",
    "ConfirmationStatus": "ConfirmationStatus",
    "PatientCasePayerScenario": "PatientCasePayerScenario",
    "PatientFullName": "PatientFullName",
    "PatientID": "PatientID",
    "PracticeName": "PracticeName",
    "ServiceLocationName": "ServiceLocationName",
    "Type": "Type",
}
RANGE_FILTERS = (
    ("StartDate", "EndDate", "StartDate"),
    ("FromLastModifiedDate", "ToLastModifiedDate", "LastModifiedDate"),
    ("FromCreatedDate", "ToCreatedDate", "CreatedDate"),
)


def kareo_datetime(moment: datetime) -> str:
    """A wall time as Kareo writes it (.NET ``ToString()``, en-US) [I]: ``3/4/2025 10:00:00 AM``."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {half}"


def parse_kareo_datetime(value: str) -> tuple[datetime, bool]:
    """A Kareo date string as a naive wall time, and whether it named a whole day (no time part)."""
    value = value.strip()
    for fmt, whole_day in (("%m/%d/%Y %I:%M:%S %p", False), ("%m/%d/%Y %I:%M %p", False), ("%m/%d/%Y", True)):
        try:
            return datetime.strptime(value, fmt), whole_day
        except ValueError:
            continue
    parsed = datetime.fromisoformat(value)  # ISO 8601 as a courtesy; raises ValueError otherwise
    if parsed.tzinfo is not None:
        raise ValueError(f"{value!r}: Kareo date strings carry no offset")
    return parsed, "T" not in value and " " not in value


def appointment_data(
    appointment_id: int | str,
    start: datetime,
    end: datetime,
    *,
    resource: str = "Jane Doe, LCSW",
    status: str = "Confirmed",
    patient_id: int | str = 10423,
    last_modified: datetime | None = None,
    **fields: Any,
) -> dict[str, str]:
    """One AppointmentData row (wall times in the practice's zone) with plausible defaults."""
    modified = last_modified or start - timedelta(days=7)
    return {
        "ID": str(appointment_id),
        "StartDate": kareo_datetime(start),
        "EndDate": kareo_datetime(end),
        "PatientID": str(patient_id),
        "PatientFullName": "Demo Patient",
        "ResourceName1": resource,
        "ServiceLocationName": "Main Office",
        "ConfirmationStatus": status,
        "AppointmentReason1": "Psychotherapy 53 min",
        "Type": "P",
        "AllDay": "False",
        "Recurring": "False",
        "CreatedDate": kareo_datetime(modified),
        "LastModifiedDate": kareo_datetime(modified),
        "PracticeID": "1",
        "PracticeName": "Demo Practice",
        **{k: str(v) for k, v in fields.items()},
    }


class SoapFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class KareoEmulator(FaultInjection):
    """The emulated Kareo account's state and its WSGI application (call the object)."""

    FAULTS = FAULTS

    def __init__(
        self,
        scenario: dict[str, Any] | None = None,
        *,
        min_interval: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        scenario = scenario or {}
        self.customer_key = scenario.get("customer_key", "kareo-customer-key")
        self.user = scenario.get("user", "api@practice.example")
        self.password = scenario.get("password", "kareo-password")
        self.customer_id = int(scenario.get("customer_id", 12345))
        self.practice_id = int(scenario.get("practice_id", 1))
        # The practice's own zone: "now" stamps (LastModifiedDate) are written in it, as Kareo does [I].
        self.timezone = ZoneInfo(scenario.get("timezone", "America/New_York"))
        self.min_interval = float(scenario.get("min_interval", min_interval))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.appointments: dict[str, dict[str, str]] = {}
        self.calls: list[dict[str, Any]] = []  # parsed requests (filter, fields), for assertions
        self._last_call: dict[str, float] = {}  # customer key -> monotonic time of the last call
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        for row in scenario.get("appointments", ()):
            self.add_appointment(row)

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> KareoEmulator:
        return cls(json.loads(Path(path).read_text()), **kw)

    # --- the Python API for tests -------------------------------------------------------------------

    def now_local(self) -> datetime:
        return self.clock().astimezone(self.timezone).replace(tzinfo=None, microsecond=0)

    def add_appointment(self, row: dict[str, Any]) -> dict[str, str]:
        row = {k: str(v) for k, v in row.items() if v is not None}
        if row.get("ConfirmationStatus", "Scheduled") not in STATUSES:
            raise ValueError(f"Unknown Kareo status {row['ConfirmationStatus']!r}.")
        unknown = set(row) - set(APPOINTMENT_FIELDS)
        if unknown:
            raise ValueError(f"Not AppointmentData fields: {sorted(unknown)}.")
        with self._lock:
            self.appointments[row["ID"]] = row
        return dict(row)

    def add_appointments(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add_appointment(row)

    def update_appointment(self, appointment_id: str | int, **changes: Any) -> dict[str, str]:
        """Apply ``changes`` and stamp LastModifiedDate with the practice-local now (unless given)."""
        with self._lock:
            row = self.appointments[str(appointment_id)]
            row.update({"LastModifiedDate": kareo_datetime(self.now_local())})
            row.update({k: str(v) for k, v in changes.items()})
            return dict(row)

    def delete_appointment(self, appointment_id: str | int) -> None:
        """Gone from Kareo (GetAppointments no longer returns it)."""
        with self._lock:
            del self.appointments[str(appointment_id)]

    def wsdl(self, address: str) -> str:
        return wsdl_document(address)

    # --- WSGI ---------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if path != SERVICE_PATH:
            return _respond(start_response, 404, b"Not found", "text/plain")
        if method == "GET" and query.lower() == "wsdl":
            host = environ.get("HTTP_HOST") or "{SERVER_NAME}:{SERVER_PORT}".format(**environ)
            return _respond(
                start_response, 200, self.wsdl(f"http://{host}{SERVICE_PATH}").encode(), "text/xml"
            )
        if method != "POST":
            return _respond(start_response, 405, b"Method not allowed", "text/plain")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        action = environ.get("HTTP_SOAPACTION", "").strip().strip('"')
        try:
            status, payload = self._soap(action, body)
        except SoapFault as fault:
            status, payload = 500, _fault(fault.code, fault.message)
        return _respond(start_response, status, payload, "text/xml; charset=utf-8")

    def _soap(self, action: str, body: bytes) -> tuple[int, bytes]:
        try:
            envelope = ET.fromstring(body)
        except ET.ParseError as exc:
            raise SoapFault("s:Client", f"The request is not well-formed XML: {exc}") from None
        request = envelope.find(f"{{{SOAP_NS}}}Body/{{{NS}}}GetAppointments/{{{NS}}}request")
        if envelope.tag != f"{{{SOAP_NS}}}Envelope" or request is None:
            raise SoapFault("s:Client", "Expected a SOAP 1.1 envelope with a GetAppointments request.")
        if action and action != SOAP_ACTION:
            raise SoapFault("a:ActionNotSupported", f"The SOAPAction {action!r} is not supported here.")
        header = {name: text or "" for name, text in _children(request, "RequestHeader")}
        fields = {name for name, text in _children(request, "Fields") if text == "true"}
        filters = {
            name: text for name, text in _children(request, "Filter") if text and name in FILTER_FIELDS
        }
        with self._lock:
            self.calls.append({"header_user": header.get("User", ""), "fields": fields, "filter": filters})

        fault = self._next_fault()
        kind = fault and fault["kind"]
        if kind == "timeout":
            time.sleep(fault.get("seconds", 1.0))
        if kind == "server_error":
            raise SoapFault("s:Server", fault.get("message", "An internal error occurred."))
        if kind == "canned":
            return 200, fault["body"]
        if kind == "malformed":
            # A body cut off mid-element, as a dropped connection behind a proxy leaves it.
            return 200, _envelope(f'<GetAppointmentsResponse xmlns="{NS}">')[:-30]

        security = self._security(header)
        if not security["SecurityResultSuccess"]:
            return 200, _response(error=None, security=security, rows=None)
        throttled = kind == "throttle" or self._throttled(header.get("CustomerKey", ""))
        if throttled:
            return 200, _response(error=THROTTLE_MESSAGE, security=security, rows=None)
        if kind == "error":
            return 200, _response(
                error=fault.get("message", "An error occurred."), security=security, rows=None
            )
        try:
            rows = self._select(filters)
        except ValueError as exc:
            return 200, _response(error=f"Invalid filter: {exc}", security=security, rows=None)
        selected = [{k: v for k, v in row.items() if k in fields} for row in rows]
        return 200, _response(error=None, security=security, rows=selected)

    def _security(self, header: dict[str, str]) -> dict[str, Any]:
        key_ok = header.get("CustomerKey", "") == self.customer_key
        login_ok = header.get("User", "") == self.user and header.get("Password", "") == self.password
        ok = key_ok and login_ok
        result = "Success" if ok else (BAD_CUSTOMER_KEY if not key_ok else BAD_LOGIN)
        return {
            "Authenticated": ok,
            "Authorized": ok,
            "CustomerId": self.customer_id if ok else 0,
            "CustomerKeyValid": key_ok,
            "PracticesAuthorized": [self.practice_id] if ok else [],
            "SecurityResult": result,
            "SecurityResultSuccess": ok,
        }

    def _throttled(self, customer_key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last_call.get(customer_key)
            self._last_call[customer_key] = now
        return last is not None and self.min_interval > 0 and now - last < self.min_interval

    def _select(self, filters: dict[str, str]) -> list[dict[str, str]]:
        with self._lock:
            rows = [copy.deepcopy(r) for r in self.appointments.values()]
        for low_name, high_name, field in RANGE_FILTERS:
            low = _bound(filters.get(low_name), upper=False)
            high = _bound(filters.get(high_name), upper=True)
            if low or high:
                rows = [r for r in rows if _within(r.get(field), low, high)]
        if filters.get("ResourceName"):  # any of the appointment's resources
            wanted = filters["ResourceName"].strip().lower()
            rows = [
                r for r in rows if any(r.get(f"ResourceName{n}", "").lower() == wanted for n in range(1, 11))
            ]
        for name, field in EQUALITY_FILTERS.items():
            if filters.get(name):
                rows = [r for r in rows if r.get(field, "").lower() == filters[name].strip().lower()]
        rows.sort(key=lambda r: (_sortable(r.get("StartDate")), int(r["ID"]) if r["ID"].isdigit() else 0))
        return rows


def _children(parent: ET.Element, name: str) -> list[tuple[str, str | None]]:
    element = parent.find(f"{{{NS}}}{name}")
    return [] if element is None else [(c.tag.split("}")[-1], c.text) for c in element]


def _within(value: str | None, low: datetime | None, high: datetime | None) -> bool:
    try:
        moment = parse_kareo_datetime(value or "")[0]
    except ValueError:
        return False
    return (not low or moment >= low) and (not high or moment <= high)


def _sortable(value: str | None) -> datetime:
    try:
        return parse_kareo_datetime(value or "")[0]
    except ValueError:
        return datetime.max


def _bound(value: str | None, *, upper: bool) -> datetime | None:
    if not value:
        return None
    moment, whole_day = parse_kareo_datetime(value)
    if upper and whole_day:
        return moment + timedelta(days=1) - timedelta(seconds=1)
    return moment


def _respond(start_response: Callable[..., Any], status: int, payload: bytes, ctype: str) -> list[bytes]:
    phrases = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
    start_response(
        f"{status} {phrases[status]}", [("Content-Type", ctype), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def _envelope(inner: str) -> bytes:
    return (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body>{inner}</s:Body></s:Envelope>').encode()


def _fault(code: str, message: str) -> bytes:
    return _envelope(
        f"<s:Fault><faultcode>{escape(code)}</faultcode>"
        f'<faultstring xml:lang="en-US">{escape(message)}</faultstring></s:Fault>'
    )


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _response(*, error: str | None, security: dict[str, Any], rows: list[dict[str, str]] | None) -> bytes:
    practices = "".join(f"<a:int>{p}</a:int>" for p in security["PracticesAuthorized"])
    parts = [
        f'<GetAppointmentsResponse xmlns="{NS}"><GetAppointmentsResult xmlns:a="{ARRAYS_NS}">',
        "<ErrorResponse>",
        f"<ErrorMessage>{escape(error)}</ErrorMessage>" if error else "<ErrorMessage/>",
        f"<IsError>{_bool(error is not None)}</IsError><StackTrace/></ErrorResponse>",
        "<SecurityResponse>",
        f"<Authenticated>{_bool(security['Authenticated'])}</Authenticated>",
        f"<Authorized>{_bool(security['Authorized'])}</Authorized>",
        f"<CustomerId>{security['CustomerId']}</CustomerId>",
        f"<CustomerKeyValid>{_bool(security['CustomerKeyValid'])}</CustomerKeyValid>",
        "<PermissionsMissing/>",
        f"<PracticesAuthorized><PracticeID>{practices}</PracticeID></PracticesAuthorized>",
        f"<SecurityResult>{escape(security['SecurityResult'])}</SecurityResult>",
        f"<SecurityResultSuccess>{_bool(security['SecurityResultSuccess'])}</SecurityResultSuccess>",
        "</SecurityResponse>",
    ]
    if rows is not None:
        parts.append("<Appointments>")
        for row in rows:
            parts.append("<AppointmentData>")
            parts.extend(f"<{f}>{escape(row[f])}</{f}>" for f in APPOINTMENT_FIELDS if f in row)
            parts.append("</AppointmentData>")
        parts.append("</Appointments>")
    parts.append("</GetAppointmentsResult></GetAppointmentsResponse>")
    return _envelope("".join(parts))


def _elements(names: Iterable[str], xsd_type: str, *, nillable: bool) -> str:
    nil = ' nillable="true"' if nillable else ""
    return "".join(f'<xs:element minOccurs="0" name="{n}"{nil} type="{xsd_type}" />' for n in names)


def wsdl_document(address: str) -> str:
    """The real KareoServices WSDL trimmed to GetAppointments (names, order and types as published)."""
    action = SOAP_ACTION
    return f"""<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:tns="{NS}" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
  name="KareoServices" targetNamespace="{NS}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/">
  <wsdl:types>
    <xs:schema elementFormDefault="qualified" targetNamespace="{NS}" xmlns:xs="http://www.w3.org/2001/XMLSchema"
      xmlns:q="{NS}" xmlns:arr="{ARRAYS_NS}">
      <xs:import namespace="{ARRAYS_NS}" />
      <xs:complexType name="RequestBase"><xs:sequence>
        <xs:element name="RequestHeader" nillable="true" type="q:RequestHeader" />
      </xs:sequence></xs:complexType>
      <xs:element name="RequestBase" nillable="true" type="q:RequestBase" />
      <xs:complexType name="RequestHeader"><xs:sequence>
        {_elements(("ClientVersion", "CustomerKey", "Password", "User"), "xs:string", nillable=True)}
      </xs:sequence></xs:complexType>
      <xs:element name="RequestHeader" nillable="true" type="q:RequestHeader" />
      <xs:complexType name="ResponseBase"><xs:sequence>
        <xs:element minOccurs="0" name="ErrorResponse" nillable="true" type="q:ErrorResponse" />
        <xs:element minOccurs="0" name="SecurityResponse" nillable="true" type="q:SecurityResponse" />
      </xs:sequence></xs:complexType>
      <xs:element name="ResponseBase" nillable="true" type="q:ResponseBase" />
      <xs:complexType name="ErrorResponse"><xs:sequence>
        <xs:element minOccurs="0" name="ErrorMessage" nillable="true" type="xs:string" />
        <xs:element minOccurs="0" name="IsError" type="xs:boolean" />
        <xs:element minOccurs="0" name="StackTrace" nillable="true" type="xs:string" />
      </xs:sequence></xs:complexType>
      <xs:element name="ErrorResponse" nillable="true" type="q:ErrorResponse" />
      <xs:complexType name="SecurityResponse"><xs:sequence>
        <xs:element minOccurs="0" name="Authenticated" type="xs:boolean" />
        <xs:element minOccurs="0" name="Authorized" type="xs:boolean" />
        <xs:element minOccurs="0" name="CustomerId" type="xs:int" />
        <xs:element minOccurs="0" name="CustomerKeyValid" type="xs:boolean" />
        <xs:element minOccurs="0" name="PermissionsMissing" nillable="true" type="q:PermissionsMissing" />
        <xs:element minOccurs="0" name="PracticesAuthorized" nillable="true" type="q:PracticiesAuthorized" />
        <xs:element minOccurs="0" name="SecurityResult" nillable="true" type="xs:string" />
        <xs:element minOccurs="0" name="SecurityResultSuccess" type="xs:boolean" />
      </xs:sequence></xs:complexType>
      <xs:element name="SecurityResponse" nillable="true" type="q:SecurityResponse" />
      <xs:complexType name="PermissionsMissing"><xs:sequence>
        <xs:element minOccurs="0" name="Permission" nillable="true" type="arr:ArrayOfstring" />
      </xs:sequence></xs:complexType>
      <xs:element name="PermissionsMissing" nillable="true" type="q:PermissionsMissing" />
      <xs:complexType name="PracticiesAuthorized"><xs:sequence>
        <xs:element minOccurs="0" name="PracticeID" nillable="true" type="arr:ArrayOfint" />
      </xs:sequence></xs:complexType>
      <xs:element name="PracticiesAuthorized" nillable="true" type="q:PracticiesAuthorized" />
      <xs:element name="GetAppointments"><xs:complexType><xs:sequence>
        <xs:element minOccurs="0" name="request" nillable="true" type="q:GetAppointmentsReq" />
      </xs:sequence></xs:complexType></xs:element>
      <xs:complexType name="GetAppointmentsReq"><xs:complexContent mixed="false">
        <xs:extension base="q:RequestBase"><xs:sequence>
          <xs:element name="Fields" nillable="true" type="q:AppointmentFieldsToReturn" />
          <xs:element minOccurs="0" name="Filter" nillable="true" type="q:AppointmentFilter" />
        </xs:sequence></xs:extension>
      </xs:complexContent></xs:complexType>
      <xs:element name="GetAppointmentsReq" nillable="true" type="q:GetAppointmentsReq" />
      <xs:complexType name="AppointmentFieldsToReturn"><xs:sequence>
        {_elements(APPOINTMENT_FIELDS, "xs:boolean", nillable=False)}
      </xs:sequence></xs:complexType>
      <xs:element name="AppointmentFieldsToReturn" nillable="true" type="q:AppointmentFieldsToReturn" />
      <xs:complexType name="AppointmentFilter"><xs:sequence>
        {_elements(FILTER_FIELDS, "xs:string", nillable=True)}
      </xs:sequence></xs:complexType>
      <xs:element name="AppointmentFilter" nillable="true" type="q:AppointmentFilter" />
      <xs:element name="GetAppointmentsResponse"><xs:complexType><xs:sequence>
        <xs:element minOccurs="0" name="GetAppointmentsResult" nillable="true" type="q:GetAppointmentsResp" />
      </xs:sequence></xs:complexType></xs:element>
      <xs:complexType name="GetAppointmentsResp"><xs:complexContent mixed="false">
        <xs:extension base="q:ResponseBase"><xs:sequence>
          <xs:element minOccurs="0" name="Appointments" nillable="true" type="q:ArrayOfAppointmentData" />
        </xs:sequence></xs:extension>
      </xs:complexContent></xs:complexType>
      <xs:element name="GetAppointmentsResp" nillable="true" type="q:GetAppointmentsResp" />
      <xs:complexType name="ArrayOfAppointmentData"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="AppointmentData" nillable="true"
          type="q:AppointmentData" />
      </xs:sequence></xs:complexType>
      <xs:element name="ArrayOfAppointmentData" nillable="true" type="q:ArrayOfAppointmentData" />
      <xs:complexType name="AppointmentData"><xs:sequence>
        {_elements(APPOINTMENT_FIELDS, "xs:string", nillable=True)}
      </xs:sequence></xs:complexType>
      <xs:element name="AppointmentData" nillable="true" type="q:AppointmentData" />
    </xs:schema>
    <xs:schema elementFormDefault="qualified" targetNamespace="{ARRAYS_NS}"
      xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{ARRAYS_NS}">
      <xs:complexType name="ArrayOfstring"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="string" nillable="true" type="xs:string" />
      </xs:sequence></xs:complexType>
      <xs:element name="ArrayOfstring" nillable="true" type="tns:ArrayOfstring" />
      <xs:complexType name="ArrayOfint"><xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="int" type="xs:int" />
      </xs:sequence></xs:complexType>
      <xs:element name="ArrayOfint" nillable="true" type="tns:ArrayOfint" />
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="KareoServices_GetAppointments_InputMessage">
    <wsdl:part name="parameters" element="tns:GetAppointments" />
  </wsdl:message>
  <wsdl:message name="KareoServices_GetAppointments_OutputMessage">
    <wsdl:part name="parameters" element="tns:GetAppointmentsResponse" />
  </wsdl:message>
  <wsdl:portType name="KareoServices">
    <wsdl:operation name="GetAppointments">
      <wsdl:input wsaw:Action="{action}" message="tns:KareoServices_GetAppointments_InputMessage" />
      <wsdl:output wsaw:Action="{action}Response" message="tns:KareoServices_GetAppointments_OutputMessage" />
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="BasicHttpBinding_KareoServices" type="tns:KareoServices">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" />
    <wsdl:operation name="GetAppointments">
      <soap:operation soapAction="{action}" style="document" />
      <wsdl:input><soap:body use="literal" /></wsdl:input>
      <wsdl:output><soap:body use="literal" /></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="KareoServices">
    <wsdl:port name="BasicHttpBinding_KareoServices" binding="tns:BasicHttpBinding_KareoServices">
      <soap:address location="{escape(address)}" />
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


def serve(emulator: KareoEmulator | None = None, *, port: int = 0) -> tuple[Any, str]:
    """Serve ``emulator`` (a fresh one by default); ``server.emulator`` gives tests its state."""
    emulator = emulator or KareoEmulator()
    server, base_url = serve_app(emulator, port=port)
    server.emulator = emulator  # type: ignore[attr-defined]
    return server, base_url
