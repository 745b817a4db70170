"""The Kareo emulator speaks the real service's SOAP 1.1 over HTTP: raw envelopes in, raw envelopes out."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
import requests

from integrations.kareo.emulator import (
    NS,
    SERVICE_PATH,
    SOAP_ACTION,
    THROTTLE_MESSAGE,
    KareoEmulator,
    appointment_data,
    serve,
)

from .conftest import CREDENTIALS

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL = "http://schemas.xmlsoap.org/wsdl/"


def envelope(*, fields=("ID", "StartDate", "ConfirmationStatus"), filters=None, credentials=None) -> bytes:
    creds = {**CREDENTIALS, **(credentials or {})}
    field_xml = "".join(f"<{f}>true</{f}>" for f in fields)
    filter_xml = "".join(f"<{k}>{v}</{k}>" for k, v in (filters or {}).items())
    return (
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><GetAppointments xmlns="{NS}"><request>'
        f"<RequestHeader><CustomerKey>{creds['customer_key']}</CustomerKey>"
        f"<Password>{creds['password']}</Password><User>{creds['user']}</User></RequestHeader>"
        f"<Fields>{field_xml}</Fields><Filter>{filter_xml}</Filter>"
        "</request></GetAppointments></s:Body></s:Envelope>"
    ).encode()


def post(emulator, body: bytes, action: str = SOAP_ACTION) -> requests.Response:
    return requests.post(
        f"{emulator.url}{SERVICE_PATH}",
        data=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'},
        timeout=5,
    )


def result(response: requests.Response) -> ET.Element:
    root = ET.fromstring(response.content)
    return root.find(f"{{{SOAP}}}Body/{{{NS}}}GetAppointmentsResponse/{{{NS}}}GetAppointmentsResult")


def text(element: ET.Element, path: str) -> str | None:
    found = element.find("/".join(f"{{{NS}}}{p}" for p in path.split("/")))
    return None if found is None else found.text


def ids(element: ET.Element) -> list[str]:
    return [a.find(f"{{{NS}}}ID").text for a in element.iter(f"{{{NS}}}AppointmentData")]


def test_the_wsdl_is_served_with_the_real_names_for_get_appointments(emulator):
    response = requests.get(f"{emulator.url}{SERVICE_PATH}?wsdl", timeout=5)
    root = ET.fromstring(response.content)
    assert response.status_code == 200 and root.get("targetNamespace") == NS
    assert root.find(f"{{{WSDL}}}service").get("name") == "KareoServices"
    port = root.find(f"{{{WSDL}}}service/{{{WSDL}}}port")
    assert port.get("name") == "BasicHttpBinding_KareoServices"
    address = port.find("{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert address == f"{emulator.url}{SERVICE_PATH}"
    operation = root.find(f"{{{WSDL}}}binding/{{{WSDL}}}operation")
    assert operation.get("name") == "GetAppointments"
    soap_op = operation.find("{http://schemas.xmlsoap.org/wsdl/soap/}operation")
    assert soap_op.get("soapAction") == SOAP_ACTION
    filters = root.find(".//{http://www.w3.org/2001/XMLSchema}complexType[@name='AppointmentFilter']").iter(
        "{http://www.w3.org/2001/XMLSchema}element"
    )
    names = [e.get("name") for e in filters]
    assert (
        names[:3] == ["AppointmentReason", "ConfirmationStatus", "EndDate"]
        and "FromLastModifiedDate" in names
    )


def test_only_the_requested_fields_are_returned_in_the_documented_envelope(emulator):
    emulator.add_appointment(appointment_data(7, datetime(2025, 3, 4, 10), datetime(2025, 3, 4, 10, 50)))
    response = post(emulator, envelope(fields=("ID", "StartDate")))
    body = result(response)
    assert response.status_code == 200
    assert text(body, "ErrorResponse/IsError") == "false"
    assert text(body, "SecurityResponse/SecurityResultSuccess") == "true"
    row = body.find(f"{{{NS}}}Appointments/{{{NS}}}AppointmentData")
    assert [c.tag.split("}")[1] for c in row] == ["ID", "StartDate"]
    assert text(row, "StartDate") == "3/4/2025 10:00:00 AM"


def test_start_and_end_dates_select_whole_local_days(emulator):
    for n, day in enumerate((3, 4, 5, 6)):
        emulator.add_appointment(appointment_data(n, datetime(2025, 3, day, 16), datetime(2025, 3, day, 17)))
    body = result(post(emulator, envelope(filters={"StartDate": "3/4/2025", "EndDate": "3/5/2025"})))
    assert ids(body) == ["1", "2"]


def test_last_modified_bounds_are_inclusive_and_accept_times(emulator):
    start, end = datetime(2025, 3, 10, 9), datetime(2025, 3, 10, 10)
    emulator.add_appointment(appointment_data(1, start, end, last_modified=datetime(2025, 3, 1, 9, 0, 0)))
    emulator.add_appointment(appointment_data(2, start, end, last_modified=datetime(2025, 3, 1, 9, 0, 1)))
    emulator.add_appointment(appointment_data(3, start, end, last_modified=datetime(2025, 3, 2, 8)))
    body = result(
        post(
            emulator,
            envelope(
                filters={"FromLastModifiedDate": "3/1/2025 9:00:01 AM", "ToLastModifiedDate": "3/1/2025"}
            ),
        )
    )
    assert ids(body) == ["2"]


def test_resource_and_status_filters_narrow_the_result(emulator):
    start, end = datetime(2025, 3, 10, 9), datetime(2025, 3, 10, 10)
    emulator.add_appointment(appointment_data(1, start, end, resource="Jane Doe, LCSW"))
    emulator.add_appointment(appointment_data(2, start, end, resource="John Roe, PhD"))
    emulator.add_appointment(appointment_data(3, start, end, resource="Jane Doe, LCSW", status="Cancelled"))
    body = result(
        post(
            emulator, envelope(filters={"ResourceName": "Jane Doe, LCSW", "ConfirmationStatus": "Confirmed"})
        )
    )
    assert ids(body) == ["1"]


@pytest.mark.parametrize(
    ("credentials", "key_valid", "message"),
    [
        ({"password": "wrong"}, "true", "Invalid user name and/or password"),
        ({"customer_key": "wrong"}, "false", "Invalid customer key"),
    ],
)
def test_bad_credentials_answer_200_with_a_failed_security_response(
    emulator, credentials, key_valid, message
):
    emulator.add_appointment(appointment_data(1, datetime(2025, 3, 4, 10), datetime(2025, 3, 4, 11)))
    response = post(emulator, envelope(credentials=credentials))
    body = result(response)
    assert response.status_code == 200
    assert text(body, "SecurityResponse/Authenticated") == "false"
    assert text(body, "SecurityResponse/CustomerKeyValid") == key_valid
    assert text(body, "SecurityResponse/SecurityResult") == message
    assert body.find(f"{{{NS}}}Appointments") is None


def test_polling_faster_than_the_minimum_interval_is_throttled_in_band(emulator):
    emulator.min_interval = 0.5
    assert text(result(post(emulator, envelope())), "ErrorResponse/IsError") == "false"
    throttled = result(post(emulator, envelope()))
    assert text(throttled, "ErrorResponse/IsError") == "true"
    assert text(throttled, "ErrorResponse/ErrorMessage") == THROTTLE_MESSAGE
    time.sleep(0.6)
    assert text(result(post(emulator, envelope())), "ErrorResponse/IsError") == "false"


def test_a_malformed_envelope_gets_a_soap_fault_with_http_500(emulator):
    response = post(emulator, b"<s:Envelope xmlns:s='x'><oops>")
    fault = ET.fromstring(response.content).find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    assert response.status_code == 500 and fault.find("faultcode").text == "s:Client"


def test_an_unknown_soap_action_is_a_fault(emulator):
    response = post(emulator, envelope(), action="http://www.kareo.com/api/schemas/KareoServices/GetPatients")
    assert response.status_code == 500 and b"ActionNotSupported" in response.content


def test_injected_faults_apply_in_order_after_unaffected_calls(emulator):
    emulator.set_fault("error", message="Database unavailable", after=1)
    emulator.set_fault("server_error")
    emulator.set_fault("malformed")
    assert text(result(post(emulator, envelope())), "ErrorResponse/IsError") == "false"
    errored = result(post(emulator, envelope()))
    assert text(errored, "ErrorResponse/ErrorMessage") == "Database unavailable"
    assert post(emulator, envelope()).status_code == 500
    malformed = post(emulator, envelope())
    assert malformed.status_code == 200
    with pytest.raises(ET.ParseError):
        ET.fromstring(malformed.content)
    assert text(result(post(emulator, envelope())), "ErrorResponse/IsError") == "false"


def test_a_timeout_fault_delays_the_answer(emulator):
    emulator.set_fault("timeout", seconds=1.0)
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{emulator.url}{SERVICE_PATH}", data=envelope(), headers={"SOAPAction": SOAP_ACTION}, timeout=0.3
        )


def test_update_stamps_last_modified_in_practice_local_time(emulator):
    emulator.add_appointment(appointment_data(1, datetime(2025, 3, 4, 10), datetime(2025, 3, 4, 11)))
    emulator.clock = lambda: datetime.fromisoformat("2025-03-05T15:30:00+00:00")
    row = emulator.update_appointment(1, ConfirmationStatus="Cancelled")
    assert row["LastModifiedDate"] == "3/5/2025 9:30:00 AM"  # Chicago, UTC-6 in March before DST


def test_a_scenario_file_seeds_the_state():
    path = Path(__file__).parents[1] / "scenarios" / "demo.json"
    emulator = KareoEmulator.from_file(path)
    server, url = serve(emulator)
    emulator.url = url
    try:
        body = result(
            post(
                emulator,
                envelope(
                    credentials={
                        "customer_key": "kareo-customer-key",
                        "user": "api@practice.example",
                        "password": "kareo-password",
                    },
                    filters={"StartDate": "3/4/2025", "EndDate": "3/4/2025"},
                ),
            )
        )
    finally:
        server.shutdown()
        server.server_close()
    assert ids(body) == ["884221", "884222"]
