"""A deterministic demo practice (`manage.py seed_demo`): therapists, patients, four weeks of appointments
from the hub and three external platforms, and a handful of real conflicts in the coming week.

Every domain write goes through the services; Office, Service and Connection have none yet, so they are
created here and audited by hand. Patient names exist only in Patient rows: appointments carry refs.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone as djtz

from accounts.roles import ADMIN, FRONT_DESK, THERAPIST
from accounts.services import user_create
from audit.services import audit_record
from conflicts.models import Conflict
from integrations.models import Connection
from integrations.services import external_appointment_upsert
from lib.errors import BookingConflict

from .models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Office,
    Patient,
    Service,
    SourceSystem,
    Therapist,
)
from .services import (
    appointment_book,
    appointment_cancel,
    appointment_set_status,
    patient_create,
    therapist_create,
    therapist_link_user,
    time_off_add,
)

SEED = 20261121
MARKER_OFFICE = "Riverside Clinic"

ADMIN_PASSWORD = "demo-admin-pass"
FRONTDESK_PASSWORD = "demo-frontdesk-pass"
THERAPIST1_PASSWORD = "demo-therapist1-pass"
THERAPIST2_PASSWORD = "demo-therapist2-pass"
# (role, username, password, email, index of the linked therapist)
DEMO_LOGINS: tuple[tuple[str, str, str, str, int | None], ...] = (
    (ADMIN, "admin", ADMIN_PASSWORD, "admin@demo.clinic", None),
    (FRONT_DESK, "frontdesk", FRONTDESK_PASSWORD, "frontdesk@demo.clinic", None),
    (THERAPIST, "therapist1", THERAPIST1_PASSWORD, "maya.okafor@demo.clinic", 0),
    (THERAPIST, "therapist2", THERAPIST2_PASSWORD, "daniel.reyes@demo.clinic", 1),
)
ADMIN_URL = "http://127.0.0.1:8000/admin/"

OFFICES = (
    ("Riverside Clinic", "100 Riverside Drive, Suite 5, New York, NY 10000 (demo)", "America/New_York"),
    ("Harbour Street Practice", "12 Harbour Street, London EC0A 0AA (demo)", "Europe/London"),
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
# (name, email, zone, weekly hours, office index)
THERAPISTS: tuple[tuple[str, str, str, dict[str, list[str]], int], ...] = (
    (
        "Dr. Maya Okafor",
        "maya.okafor@demo.clinic",
        "America/New_York",
        {d: ["09:00-12:00", "13:00-17:00"] for d in _WEEKDAYS},
        0,
    ),
    (
        "Daniel Reyes",
        "daniel.reyes@demo.clinic",
        "America/New_York",
        {
            "monday": ["08:00-12:00", "12:30-16:30"],
            "tuesday": ["08:00-12:00", "12:30-16:30"],
            "thursday": ["08:00-12:00", "12:30-16:30"],
            "saturday": ["09:00-13:00"],
        },
        0,
    ),
    (
        "Priya Natarajan",
        "priya.natarajan@demo.clinic",
        "America/New_York",  # evening clinic
        {d: ["12:00-20:00"] for d in ("tuesday", "wednesday", "thursday", "friday")},
        0,
    ),
    (
        "Elena Kowalski",
        "elena.kowalski@demo.clinic",
        "America/Chicago",
        {d: ["08:30-12:30", "13:30-17:30"] for d in ("monday", "tuesday", "wednesday", "thursday")},
        0,
    ),
    (
        "Oliver Bennett",
        "oliver.bennett@demo.clinic",
        "Europe/London",
        {d: ["09:00-13:00", "14:00-17:30"] for d in _WEEKDAYS},
        1,
    ),
    (
        "Aisha Rahman",
        "aisha.rahman@demo.clinic",
        "Europe/London",  # part-time
        {d: ["10:00-16:00"] for d in ("monday", "wednesday", "friday")},
        1,
    ),
)
# (name, durations, buffer_after, price, appointment type, weight in the generated schedule)
SERVICES = (
    ("Initial assessment", [60, 90], 15, "180.00", AppointmentType.INTAKE, 1),
    ("Therapy session", [50], 10, "130.00", AppointmentType.CONSULT, 4),
    ("Follow-up", [30], 0, "80.00", AppointmentType.FOLLOW_UP, 2),
    ("Telehealth check-in", [20], 0, "45.00", AppointmentType.TELEHEALTH, 1),
)
# (platform, display name, external id prefix)
CONNECTIONS = (
    (SourceSystem.ZOCDOC, "Zocdoc (seeded history)", "zd"),
    (SourceSystem.KAREO, "Kareo / Tebra (seeded history)", "kr"),
    (SourceSystem.SIMPLEPRACTICE, "SimplePractice (seeded history)", "sp"),
)
PATIENT_NAMES = (
    "Avery Thompson",
    "Jordan Blake",
    "Casey Morgan",
    "Riley Chen",
    "Taylor Brooks",
    "Morgan Patel",
    "Jamie Alvarez",
    "Quinn Foster",
    "Drew Nakamura",
    "Harper Singh",
    "Rowan Fitzgerald",
    "Sage Delgado",
    "Emerson Clarke",
    "Parker Nguyen",
    "Reese Holloway",
    "Skyler Moreau",
    "Finley Osei",
    "Hayden Park",
    "Logan Whitaker",
    "Kendall Ruiz",
)
EXTERNAL_RAW_STATUS = {
    AppointmentStatus.SCHEDULED: "booked",
    AppointmentStatus.COMPLETED: "completed",
    AppointmentStatus.NO_SHOW: "no_show",
    AppointmentStatus.CANCELLED: "cancelled",
}
OVERRIDE_REASON = "Urgent: double-booked by agreement"


@dataclass
class DemoSummary:
    already_seeded: bool
    offices: int = 0
    therapists: int = 0
    therapist_zones: int = 0
    patients: int = 0
    appointments: dict[str, int] = field(default_factory=dict)  # by source_system
    open_conflicts: dict[str, int] = field(default_factory=dict)  # by kind
    skipped_bookings: int = 0

    def lines(self) -> list[str]:
        head = "Demo data already seeded; logins reset." if self.already_seeded else "Demo data seeded."
        appts = ", ".join(f"{k} {v}" for k, v in sorted(self.appointments.items()))
        conflicts = ", ".join(f"{k} {v}" for k, v in sorted(self.open_conflicts.items())) or "none"
        lines = [
            head,
            f"  Offices: {self.offices}",
            f"  Therapists: {self.therapists} (in {self.therapist_zones} time zones)",
            f"  Patients: {self.patients}",
            f"  Appointments: {sum(self.appointments.values())} ({appts})",
            f"  Open conflicts: {sum(self.open_conflicts.values())} ({conflicts})",
        ]
        if self.skipped_bookings:
            lines.append(f"  Hub bookings refused as clashes and skipped: {self.skipped_bookings}")
        return lines


def demo_seed(*, today: date | None = None) -> DemoSummary:
    """Seed the demo practice once; on later runs only make sure the demo logins work."""
    today = today or djtz.localdate()
    with transaction.atomic():
        if Office.objects.filter(name=MARKER_OFFICE).exists():
            _reset_logins()
            _live_zocdoc_connection()
            _live_kareo_connection()
            _google_demo_connections()
            _live_simplepractice_connection()
            return _summary(already_seeded=True)
        skipped = _Seeder(today).run()
        _live_zocdoc_connection()
        _live_kareo_connection()
        _google_demo_connections()
        _live_simplepractice_connection()
    return _summary(already_seeded=False, skipped=skipped)


LIVE_ZOCDOC = "Zocdoc (live emulator)"


def _live_zocdoc_connection() -> Connection:
    """The practice's Zocdoc account, served by `manage.py run_emulators`: synced on its own beat
    schedule and pushed to by signed webhooks. Idempotent."""
    from django.conf import settings

    from integrations.emulators import ZOCDOC_DEMO_PROVIDERS, zocdoc_demo_client, zocdoc_demo_webhook_key
    from integrations.services import connection_schedule

    existing = Connection.objects.filter(platform=SourceSystem.ZOCDOC, display_name=LIVE_ZOCDOC).first()
    if existing is not None:
        return existing
    url = f"http://127.0.0.1:{settings.EMULATOR_PORTS['zocdoc']}"
    new_york = Therapist.objects.filter(timezone="America/New_York").order_by("pk")[
        : len(ZOCDOC_DEMO_PROVIDERS)
    ]
    connection = _audited_create(
        Connection(
            platform=SourceSystem.ZOCDOC,
            display_name=LIVE_ZOCDOC,
            credentials={
                **zocdoc_demo_client(),
                "base_url": url,
                "token_url": f"{url}/oauth/token",
                "webhook_key": zocdoc_demo_webhook_key(),
                "default_duration_minutes": 50,
            },
            config={
                "provider_map": dict(zip(ZOCDOC_DEMO_PROVIDERS, [t.pk for t in new_york], strict=False)),
                "window_past_days": 7,
                "window_future_days": 30,
            },
        ),
        "integrations.connection.created",
    )
    connection_schedule(connection=connection)
    return connection


LIVE_KAREO = "Kareo / Tebra (live emulator)"


def _live_kareo_connection() -> Connection:
    """The practice's Kareo/Tebra account, served by `manage.py run_emulators`: polled on its own beat
    schedule (never more often than every 5 minutes; Kareo has no push). Idempotent."""
    from django.conf import settings

    from integrations.emulators import KAREO_DEMO_RESOURCES, KAREO_DEMO_ZONE, kareo_demo_credentials
    from integrations.kareo.emulator import SERVICE_PATH
    from integrations.services import connection_schedule

    existing = Connection.objects.filter(platform=SourceSystem.KAREO, display_name=LIVE_KAREO).first()
    if existing is not None:
        return existing
    url = f"http://127.0.0.1:{settings.EMULATOR_PORTS['kareo']}{SERVICE_PATH}"
    # The practice zone's therapists (London, Harbour Street): Kareo's wall times are read in that zone.
    therapists = Therapist.objects.filter(timezone=KAREO_DEMO_ZONE).order_by("pk")[
        : len(KAREO_DEMO_RESOURCES)
    ]
    connection = _audited_create(
        Connection(
            platform=SourceSystem.KAREO,
            display_name=LIVE_KAREO,
            credentials={**kareo_demo_credentials(), "wsdl_url": f"{url}?wsdl"},
            config={
                "timezone": KAREO_DEMO_ZONE,
                "provider_map": dict(zip(KAREO_DEMO_RESOURCES, [t.pk for t in therapists], strict=False)),
                "window_past_days": 7,
                "window_future_days": 30,
            },
        ),
        "integrations.connection.created",
    )
    connection_schedule(connection=connection)
    return connection


def _google_demo_connections() -> None:
    from integrations.google.demo import google_demo_connect

    google_demo_connect()


LIVE_SIMPLEPRACTICE = "SimplePractice feed (live emulator)"


def _live_simplepractice_connection() -> Connection | None:
    """One New York clinician's SimplePractice calendar feed, served by `manage.py run_emulators` and
    polled on its own schedule (titles there carry names; only keyed pseudonyms reach the hub). Idempotent."""
    from django.conf import settings

    from integrations.emulators import simplepractice_demo_token
    from integrations.ics_feed.services import ics_feed_subscribe

    existing = Connection.objects.filter(
        platform=SourceSystem.SIMPLEPRACTICE, display_name=LIVE_SIMPLEPRACTICE
    ).first()
    therapist = Therapist.objects.filter(timezone="America/New_York").order_by("-pk").first()
    if existing is not None or therapist is None:
        return existing
    port = settings.EMULATOR_PORTS["simplepractice"]
    return ics_feed_subscribe(
        actor=None,
        therapist=therapist,
        url=f"http://127.0.0.1:{port}/ical/{simplepractice_demo_token()}.ics",
        platform=SourceSystem.SIMPLEPRACTICE,
        display_name=LIVE_SIMPLEPRACTICE,
    )


def _summary(*, already_seeded: bool, skipped: int = 0) -> DemoSummary:
    return DemoSummary(
        already_seeded=already_seeded,
        offices=Office.objects.count(),
        therapists=Therapist.objects.count(),
        therapist_zones=Therapist.objects.values("timezone").distinct().count(),
        patients=Patient.objects.count(),
        appointments=dict(Counter(Appointment.objects.values_list("source_system", flat=True))),
        open_conflicts=dict(
            Counter(Conflict.objects.filter(status=Conflict.Status.OPEN).values_list("kind", flat=True))
        ),
        skipped_bookings=skipped,
    )


def _reset_logins() -> None:
    User = get_user_model()
    for role, username, password, email, therapist_index in DEMO_LOGINS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = user_create(actor=None, username=username, password=password, role=role, email=email)
            therapist = (
                Therapist.objects.filter(email=THERAPISTS[therapist_index][1]).first()
                if therapist_index is not None
                else None
            )
            if therapist is not None and therapist.user_id is None:
                therapist_link_user(actor=None, therapist=therapist, user=user)
            continue
        user.set_password(password)
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
        audit_record(actor=None, action="accounts.user.demo_password_reset", target=user)


def _audited_create(model_obj: Any, action: str) -> Any:
    with transaction.atomic():
        model_obj.full_clean()
        model_obj.save()
        audit_record(actor=None, action=action, target=model_obj)
    return model_obj


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _window(span: str) -> tuple[int, int]:
    start, end = span.split("-")
    return _minutes(start), _minutes(end)


def _day_intervals(hours: dict[str, list[str]], day: date) -> list[tuple[int, int]]:
    name = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[day.weekday()]
    return [_window(s) for s in hours.get(name, [])]


def _at(day: date, minute: int, tz: str) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=ZoneInfo(tz))


def _intersects(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class _Seeder:
    def __init__(self, today: date) -> None:
        self.today = today
        self.rng = random.Random(SEED)
        self.skipped = 0
        self.next_external_id = {prefix: 1001 for _, _, prefix in CONNECTIONS}
        self.patient_busy: dict[str, list[tuple[datetime, datetime]]] = {}

    def run(self) -> int:
        self._practice()
        scenarios = self._plan_scenarios()
        reserved: dict[tuple[int, date], list[tuple[int, int]]] = {}
        for _, indexes, span, day in scenarios:
            for i in indexes:
                reserved.setdefault((i, day), []).append(_window(span))
        self._schedule(reserved)
        self._conflicts({name: day for name, _, _, day in scenarios})
        return self.skipped

    # --- the practice ---------------------------------------------------------------------------------

    def _practice(self) -> None:
        self.users = {
            username: user_create(actor=None, username=username, password=password, role=role, email=email)
            for role, username, password, email, _ in DEMO_LOGINS
        }
        self.admin, self.frontdesk = self.users["admin"], self.users["frontdesk"]
        offices = [
            _audited_create(Office(name=n, address=a, timezone=tz), "scheduler.office.created")
            for n, a, tz in OFFICES
        ]
        self.services = [
            _audited_create(
                Service(name=n, durations=d, buffer_after_minutes=b, price=p), "scheduler.service.created"
            )
            for n, d, b, p, _, _ in SERVICES
        ]
        self.service_types = {s.pk: t for s, (*_, t, _) in zip(self.services, SERVICES, strict=True)}
        self.service_weights = [w for *_, w in SERVICES]
        self.connections = [
            (
                _audited_create(
                    Connection(platform=p, display_name=n, therapist=None, write_enabled=False),
                    "integrations.connection.created",
                ),
                prefix,
            )
            for p, n, prefix in CONNECTIONS
        ]
        self.therapists = [
            therapist_create(
                actor=self.admin, name=n, email=e, timezone=tz, working_hours=h, offices=[offices[o]]
            )
            for n, e, tz, h, o in THERAPISTS
        ]
        self.home_office = [offices[o] for *_, o in THERAPISTS]
        for _, username, _, _, index in DEMO_LOGINS:
            if index is not None:
                therapist_link_user(actor=None, therapist=self.therapists[index], user=self.users[username])
        rng = self.rng
        self.patients = []
        for i, name in enumerate(PATIENT_NAMES):
            dob = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 58))
            email = name.lower().replace(" ", ".") + "@example.com"
            self.patients.append(
                patient_create(
                    actor=self.frontdesk,
                    name=name,
                    date_of_birth=dob.isoformat(),
                    email=email,
                    phone=f"+1 555-01{i:02d}",
                )
            )
        # Each platform knows patients by its own keys; a small pool so repeat visits happen.
        self.pseudonyms = {
            prefix: [f"{p.value}:pt-{n}" for n in rng.sample(range(10, 999), 30)]
            for p, _, prefix in CONNECTIONS
        }

    # --- the regular schedule -------------------------------------------------------------------------

    def _days(self) -> list[date]:
        first = self.today - timedelta(days=self.today.weekday() + 14)
        return [first + timedelta(days=n) for n in range((self.today + timedelta(days=15) - first).days)]

    def _schedule(self, reserved: dict[tuple[int, date], list[tuple[int, int]]]) -> None:
        rng = self.rng
        for day in self._days():
            for ti, therapist in enumerate(self.therapists):
                for ws, we in _day_intervals(therapist.working_hours, day):
                    cursor = ws + rng.choice([0, 0, 15, 30])
                    while True:
                        service = rng.choices(self.services, weights=self.service_weights)[0]
                        end = cursor + rng.choice(service.durations)
                        padded = end + service.buffer_after_minutes
                        if end > we:
                            break
                        clash = next(
                            (r for r in reserved.get((ti, day), []) if _intersects(r, (cursor, padded))), None
                        )
                        if clash:
                            cursor = clash[1]
                            continue
                        start_dt, end_dt = (
                            _at(day, cursor, therapist.timezone),
                            _at(day, end, therapist.timezone),
                        )
                        if rng.random() < 0.6:
                            self._regular_hub(ti, day, start_dt, end_dt, service)
                        else:
                            self._regular_external(ti, day, start_dt, end_dt, service)
                        cursor = padded + rng.choice([0, 10, 20, 30, 60, 90, 120, 150, 180])

    def _final_status(self, day: date) -> str:
        r = self.rng.random()
        if day < self.today:
            return (
                AppointmentStatus.COMPLETED
                if r < 0.8
                else AppointmentStatus.NO_SHOW
                if r < 0.9
                else AppointmentStatus.CANCELLED
            )
        if day > self.today:
            return (
                AppointmentStatus.CONFIRMED
                if r < 0.3
                else AppointmentStatus.CANCELLED
                if r > 0.95
                else AppointmentStatus.SCHEDULED
            )
        return AppointmentStatus.SCHEDULED

    def _free(self, refs: list[str], start: datetime, end: datetime) -> str:
        free = [
            r for r in refs if not any(_intersects(b, (start, end)) for b in self.patient_busy.get(r, []))
        ]
        ref = self.rng.choice(free)
        self.patient_busy.setdefault(ref, []).append((start, end))
        return ref

    def _regular_hub(self, ti: int, day: date, start: datetime, end: datetime, service: Service) -> None:
        status = self._final_status(day)
        actor = self.rng.choice([self.admin, self.frontdesk])
        ref = self._free([p.ref for p in self.patients], start, end)
        try:
            appointment = self._book(
                ti,
                start,
                end,
                service,
                ref,
                actor=actor,
                status=AppointmentStatus.CONFIRMED
                if status == AppointmentStatus.CONFIRMED
                else AppointmentStatus.SCHEDULED,
            )
        except BookingConflict:
            self.skipped += 1
            return
        if status == AppointmentStatus.CANCELLED:
            appointment_cancel(actor=actor, appointment=appointment, reason="Patient called to cancel")
        elif status in (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW):
            appointment_set_status(actor=actor, appointment=appointment, status=status)

    def _regular_external(self, ti: int, day: date, start: datetime, end: datetime, service: Service) -> None:
        connection, prefix = self.rng.choice(self.connections)
        status = self._final_status(day)
        if status == AppointmentStatus.CONFIRMED:
            status = AppointmentStatus.SCHEDULED
        self._external(
            connection,
            prefix,
            ti,
            start,
            end,
            self._free(self.pseudonyms[prefix], start, end),
            status=status,
            type=self.service_types[service.pk],
        )

    def _book(
        self,
        ti: int,
        start: datetime,
        end: datetime,
        service: Service,
        ref: str,
        *,
        actor: Any,
        status: str = AppointmentStatus.SCHEDULED,
        override_reason: str = "",
    ) -> Appointment:
        office = None if service.name == "Telehealth check-in" else self.home_office[ti]
        return appointment_book(
            actor=actor,
            therapist=self.therapists[ti],
            start=start,
            end=end,
            service=service,
            type=self.service_types[service.pk],
            office=office,
            patient_ref=ref,
            status=status,
            override_reason=override_reason,
        )

    def _external(
        self,
        connection: Connection,
        prefix: str,
        ti: int,
        start: datetime,
        end: datetime,
        patient_ref: str,
        *,
        status: str = AppointmentStatus.SCHEDULED,
        type: str = AppointmentType.CONSULT,
    ) -> Appointment:
        external_id = f"{prefix}-{self.next_external_id[prefix]}"
        self.next_external_id[prefix] += 1
        raw = {
            "appointment_id": external_id,
            "provider_id": f"{prefix}-prov-{301 + ti}",
            "status": EXTERNAL_RAW_STATUS[status],
        }
        appointment, _ = external_appointment_upsert(
            connection=connection,
            external_id=external_id,
            therapist_id=self.therapists[ti].pk,
            start=start,
            end=end,
            status=status,
            type=type,
            patient_ref=patient_ref,
            office_id=self.home_office[ti].pk,
            raw=raw,
        )
        return appointment

    # --- conflicts in the coming week -----------------------------------------------------------------

    def _plan_scenarios(self) -> list[tuple[str, tuple[int, ...], str, date]]:
        """(name, therapist indexes, local window kept free of the regular schedule, day)."""
        wanted = [
            ("overlap", (0,), "10:00-11:30"),
            ("override", (1,), "14:00-14:45"),
            ("duplicate", (2,), "15:00-16:00"),
            ("patient_overlap", (4, 5), "11:00-12:00"),
            ("time_off", (3,), "14:30-17:00"),
        ]
        planned = []
        for name, indexes, span in wanted:
            lo, hi = _window(span)
            day = next(
                d
                for d in (self.today + timedelta(days=n) for n in range(1, 8))
                if all(
                    any(s <= lo and hi <= e for s, e in _day_intervals(THERAPISTS[i][3], d)) for i in indexes
                )
            )
            planned.append((name, indexes, span, day))
        return planned

    def _conflicts(self, days: dict[str, date]) -> None:
        (zocdoc, zd), (kareo, kr), (simple, sp) = self.connections
        assessment, session, follow_up, _ = self.services
        tz = [t.timezone for t in self.therapists]
        patients = [p.ref for p in self.patients]

        def at(ti: int, day: date, hhmm: str) -> datetime:
            return _at(day, _minutes(hhmm), tz[ti])

        # overlap: Zocdoc books on top of a hub session.
        d = days["overlap"]
        start, end = at(0, d, "10:00"), at(0, d, "10:50")
        self._book(0, start, end, session, self._free(patients, start, end), actor=self.frontdesk)
        start, end = at(0, d, "10:30"), at(0, d, "11:20")
        self._external(zocdoc, zd, 0, start, end, self._free(self.pseudonyms[zd], start, end))

        # overlap: an Admin books over an existing follow-up on purpose.
        d = days["override"]
        start, end = at(1, d, "14:00"), at(1, d, "14:30")
        self._book(1, start, end, follow_up, self._free(patients, start, end), actor=self.frontdesk)
        self._book(
            1,
            start,
            end,
            follow_up,
            self._free(patients, start, end),
            actor=self.admin,
            override_reason=OVERRIDE_REASON,
        )

        # duplicate: one visit reported by both Zocdoc and Kareo (Kareo's feed has no patient key).
        d = days["duplicate"]
        start, end = at(2, d, "15:00"), at(2, d, "15:50")
        self._external(zocdoc, zd, 2, start, end, self._free(self.pseudonyms[zd], start, end))
        self._external(kareo, kr, 2, start, end, "")

        # patient_overlap: one patient key, booked with two therapists at once on two platforms.
        d = days["patient_overlap"]
        start, end = at(4, d, "11:00"), at(4, d, "11:50")
        self._external(zocdoc, zd, 4, start, end, "ext:pt-2718")
        self._external(simple, sp, 5, at(5, d, "11:00"), at(5, d, "11:50"), "ext:pt-2718")

        # outside_hours: time off now covers an existing assessment.
        d = days["time_off"]
        start, end = at(3, d, "15:00"), at(3, d, "16:00")
        self._book(3, start, end, assessment, self._free(patients, start, end), actor=self.frontdesk)
        time_off_add(
            actor=self.admin,
            therapist=self.therapists[3],
            start=at(3, d, "14:30"),
            end=at(3, d, "17:00"),
            reason="Personal appointment",
        )

        # outside_hours: a Sunday booking and a late-evening one from external platforms.
        sunday = self.today + timedelta(days=(6 - self.today.weekday()) or 7)
        start, end = at(1, sunday, "10:00"), at(1, sunday, "10:50")
        self._external(simple, sp, 1, start, end, self._free(self.pseudonyms[sp], start, end))
        evening = next(
            d
            for d in (self.today + timedelta(days=n) for n in range(1, 8))
            if _day_intervals(THERAPISTS[2][3], d)
        )
        start, end = at(2, evening, "20:30"), at(2, evening, "21:20")
        self._external(kareo, kr, 2, start, end, self._free(self.pseudonyms[kr], start, end))
