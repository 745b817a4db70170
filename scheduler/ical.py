"""iCalendar output for appointments (RFC 5545) through the icalendar package.

Staff-facing and external projections are PHI-free: an opaque title, no attendees, no notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.utils import timezone
from icalendar import Calendar, Event

from .models import Appointment, AppointmentStatus

PRODID = "-//Clinic scheduling hub//EN"
_STATUS = {
    AppointmentStatus.SCHEDULED: "TENTATIVE",
    AppointmentStatus.CONFIRMED: "CONFIRMED",
    AppointmentStatus.CANCELLED: "CANCELLED",
    AppointmentStatus.COMPLETED: "CONFIRMED",
    AppointmentStatus.NO_SHOW: "CONFIRMED",
}


def appointment_event(appointment: Appointment) -> Event:
    event = Event()
    event.add("uid", f"{appointment.uid}@clinic-hub")
    event.add("dtstamp", timezone.now())
    # Local time with TZID (plus VTIMEZONE below), so a calendar shows the booked wall-clock time.
    event.add("dtstart", appointment.start.astimezone(ZoneInfo(appointment.timezone)))
    event.add("dtend", appointment.end.astimezone(ZoneInfo(appointment.timezone)))
    event.add("sequence", appointment.version - 1)
    event.add("status", _STATUS[appointment.status])
    event.add("summary", "Appointment")
    event.add("class", "PRIVATE")
    event.add("transp", "TRANSPARENT" if appointment.status == AppointmentStatus.CANCELLED else "OPAQUE")
    return event


def appointments_to_ics(appointments: Iterable[Appointment]) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    for appointment in appointments:
        cal.add_component(appointment_event(appointment))
    cal.add_missing_timezones()
    return cal.to_ical()
