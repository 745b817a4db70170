"""iCalendar output for appointments (RFC 5545) through the icalendar package.

Every export is correct iCalendar for any calendar app: a stable UID per appointment, a SEQUENCE that
rises with every change (the appointment's version), DTSTAMP/LAST-MODIFIED from the last change (so the same
data renders to the same bytes, which the cached feed and its ETag rely on), DTSTART/DTEND as wall-clock
time with the booking's TZID plus a VTIMEZONE for every zone used (a weekly series stays at 10:00 local on
both sides of a clock change), STATUS (cancelled appointments stay in, as CANCELLED, so subscribers drop
them), VALARM reminders (``settings.ICS_ALARM_MINUTES``) and METHOD:PUBLISH.

Two audiences:

* ``staff`` (default; feeds, staff downloads, anything that may leave the hub): PHI-free — an opaque
  title, no attendees, no notes, no service, no patient.
* ``patient``: for the appointment's own patient (a staff member downloads it to send it): the service,
  the therapist and the office. Still no names of the patient, no notes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.utils import timezone
from icalendar import Alarm, Calendar, Event, Timezone, vDDDTypes, vDuration, vInt, vText

from .models import Appointment, AppointmentStatus

PRODID = "-//Clinic scheduling hub//EN"
# Our UIDs end with this: the importer recognises (and skips) the hub's own events coming back.
UID_DOMAIN = "clinic-hub"
STAFF, PATIENT = "staff", "patient"
_STATUS = {
    AppointmentStatus.SCHEDULED: "TENTATIVE",
    AppointmentStatus.CONFIRMED: "CONFIRMED",
    AppointmentStatus.CANCELLED: "CANCELLED",
    AppointmentStatus.COMPLETED: "CONFIRMED",
    AppointmentStatus.NO_SHOW: "CONFIRMED",
}


# What a staff (PHI-free) export reads of an appointment.
EXPORT_FIELDS = ("uid", "therapist", "start", "end", "timezone", "status", "version", "created", "updated")


def appointment_uid(appointment: Appointment) -> str:
    return f"{appointment.uid}@{UID_DOMAIN}"


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _alarm(minutes: int) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", "Appointment reminder")
    alarm.add("trigger", timedelta(minutes=-minutes))
    return alarm


@lru_cache(maxsize=32)
def _alarms(minutes: tuple[int, ...]) -> tuple[Alarm, ...]:
    # Shared by every event of an export: components are only read while serialising, and building two
    # VALARMs per event would be a third of the export's own time at 10,000 events.
    return tuple(_alarm(m) for m in minutes)


# Constant property values, encoded once (icalendar's vText construction is most of Event.add's cost).
_TEXT = {
    value: vText(value) for value in ("Appointment", "PRIVATE", "OPAQUE", "TRANSPARENT", *_STATUS.values())
}


def appointment_event(
    appointment: Appointment, *, audience: str = STAFF, alarm_minutes: Iterable[int] | None = None
) -> Event:
    zone = _zone(appointment.timezone)
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    event = Event()
    # Property objects set directly rather than through Event.add (same output, a third of the cost).
    changed = vDDDTypes(appointment.updated.astimezone(UTC))
    event["UID"] = vText(appointment_uid(appointment))
    event["DTSTAMP"] = changed
    event["CREATED"] = vDDDTypes(appointment.created.astimezone(UTC))
    event["LAST-MODIFIED"] = changed
    # Local time with TZID (plus VTIMEZONE), so a calendar shows the booked wall-clock time in every season.
    event["DTSTART"] = vDDDTypes(appointment.start.astimezone(zone))
    event["DTEND"] = vDDDTypes(appointment.end.astimezone(zone))
    event["SEQUENCE"] = vInt(max(appointment.version - 1, 0))
    event.add("status", _TEXT[_STATUS[appointment.status]], encode=False)
    transparent = cancelled or not appointment.is_occupying
    event.add("transp", _TEXT["TRANSPARENT" if transparent else "OPAQUE"], encode=False)
    event.add("class", _TEXT["PRIVATE"], encode=False)
    if audience == PATIENT:
        what = appointment.service.name if appointment.service_id else "Appointment"
        event.add("summary", f"{what} with {appointment.therapist.name}")
        if appointment.office_id:
            office = appointment.office
            event.add("location", ", ".join(p for p in (office.name, office.address.strip()) if p))
    else:
        event.add("summary", _TEXT["Appointment"], encode=False)
    if not cancelled:
        minutes = settings.ICS_ALARM_MINUTES if alarm_minutes is None else alarm_minutes
        event.subcomponents.extend(_alarms(tuple(int(m) for m in minutes)))
    return event


def appointments_to_ics(
    appointments: Iterable[Appointment],
    *,
    audience: str = STAFF,
    name: str = "",
    refresh_minutes: int | None = None,
) -> bytes:
    """One VCALENDAR (METHOD:PUBLISH) with one VEVENT per appointment and a VTIMEZONE per zone used."""
    calendar = appointments_calendar(
        appointments, audience=audience, name=name, refresh_minutes=refresh_minutes
    )
    return calendar.to_ical()


def appointments_calendar(
    appointments: Iterable[Appointment],
    *,
    audience: str = STAFF,
    name: str = "",
    refresh_minutes: int | None = None,
) -> Calendar:
    if audience not in (STAFF, PATIENT):
        raise ValueError(f"Unknown audience {audience!r}.")
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name:
        cal.add("x-wr-calname", name)
    if refresh_minutes:
        # How often a subscribing app should poll (RFC 7986, and the de-facto Outlook/Apple property).
        cal.add("refresh-interval", timedelta(minutes=refresh_minutes), parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", vDuration(timedelta(minutes=refresh_minutes)))
    alarms = tuple(int(m) for m in settings.ICS_ALARM_MINUTES)
    zones: dict[str, tuple[date, date]] = {}
    events = []
    for appointment in appointments:
        events.append(appointment_event(appointment, audience=audience, alarm_minutes=alarms))
        day = appointment.start.date()
        first, last = zones.get(appointment.timezone, (day, day))
        zones[appointment.timezone] = (min(first, day), max(last, day))
    # A VTIMEZONE for every zone used (what add_missing_timezones does, without walking every property of
    # every event to find the TZIDs we already know), covering the events' dates with a year of margin.
    for zone_name, (first, last) in sorted(zones.items()):
        if zone_name != "UTC":
            cal.add_component(
                Timezone.from_tzid(
                    zone_name, first_date=first - timedelta(days=366), last_date=last + timedelta(days=366)
                )
            )
    cal.subcomponents.extend(events)
    return cal


def feed_to_ics(appointments: Iterable[Appointment]) -> bytes:
    """A subscription feed: PHI-free (staff audience), with a refresh hint for the subscribing app."""
    return appointments_to_ics(
        appointments, name="Clinic appointments", refresh_minutes=int(settings.ICS_FEED_REFRESH_MINUTES)
    )


# --- the per-therapist subscription feed ----------------------------------------------------------------


def feed_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Whole UTC days, so the window (and with it the cache key) changes once a day, not every request."""
    today = (now or timezone.now()).astimezone(UTC).date()
    lo = datetime.combine(today - timedelta(days=settings.ICS_FEED_PAST_DAYS), time(), tzinfo=UTC)
    return lo, lo + timedelta(days=settings.ICS_FEED_PAST_DAYS + settings.ICS_FEED_FUTURE_DAYS + 1)


def therapist_feed(therapist_id: int, *, now: datetime | None = None) -> tuple[bytes, str]:
    """The therapist's feed and its ETag, rendered once per change and then served from the cache.

    The cache key carries a version stamp of the data — how many appointments the window holds, the sum of
    their versions (every change bumps an appointment's version) and the latest ``updated`` — so every write
    path (the scheduling services, sync_apply's bulk upserts and cancellations, the admin) invalidates it
    without having to remember to, and a stale rendering is never served. The stamp is one aggregate
    query over the (therapist, start) index.
    """
    lo, hi = feed_window(now)
    rows = Appointment.objects.filter(therapist_id=therapist_id, start__lt=hi, end__gt=lo)
    stamp = rows.aggregate(n=Count("pk"), versions=Sum("version"), last=Max("updated"))
    last = stamp["last"].timestamp() if stamp["last"] else 0
    raw_key = (
        f"{therapist_id}:{lo:%Y%m%d}:{stamp['n']}:{stamp['versions']}:{last}:"
        f"{settings.ICS_ALARM_MINUTES}:{settings.ICS_FEED_REFRESH_MINUTES}"
    )
    digest = hashlib.sha256(raw_key.encode()).hexdigest()[:32]
    key, etag = f"ics-feed:v1:{digest}", f'"{digest}"'
    body = cache.get(key)
    if body is None:
        body = feed_to_ics(rows.only(*EXPORT_FIELDS).order_by("start", "pk"))
        cache.set(key, body, settings.ICS_FEED_CACHE_SECONDS)
    return body, etag
