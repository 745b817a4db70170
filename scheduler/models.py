"""The practice and its canonical appointments (DESIGN.md §2). Times are aware and stored in UTC."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q

from lib.crypto import EncryptedJSONField, EncryptedTextField


def validate_timezone(value: str) -> None:
    if value not in _zones():
        raise ValidationError(f"{value!r} is not an IANA time zone name (e.g. 'America/New_York').")


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


_ZONES: set[str] | None = None


class SourceSystem(models.TextChoices):
    HUB = "hub", "Hub"
    GOOGLE = "google", "Google Calendar"
    OUTLOOK = "outlook", "Outlook / Microsoft 365"
    CALDAV = "caldav", "Apple / CalDAV"
    ZOCDOC = "zocdoc", "Zocdoc"
    KAREO = "kareo", "Kareo / Tebra"
    ATHENAHEALTH = "athenahealth", "athenahealth"
    SIMPLEPRACTICE = "simplepractice", "SimplePractice"
    CALENDLY = "calendly", "Calendly"
    MINDBODY = "mindbody", "Mindbody"
    VAGARO = "vagaro", "Vagaro"
    PHOREST = "phorest", "Phorest"
    ICS_FEED = "ics_feed", "iCalendar feed"


class AppointmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"
    NO_SHOW = "no_show", "No-show"


# Longer appointments are refused; the bound lets clash queries limit their index range from below.
MAX_APPOINTMENT_LENGTH = timedelta(hours=24)
# Service buffers are at most this long each, so clash queries pad by a constant instead of asking the
# database for the widest buffer on every booking.
MAX_BUFFER_MINUTES = 120
BUFFER_PAD = timedelta(minutes=2 * MAX_BUFFER_MINUTES)

# Statuses that hold the therapist's time.
OCCUPYING_STATUSES = (AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED)


class AppointmentType(models.TextChoices):
    CONSULT = "consult", "Consultation"
    INTAKE = "intake", "Intake"
    FOLLOW_UP = "follow_up", "Follow-up"
    TELEHEALTH = "telehealth", "Telehealth"
    ADMIN = "admin", "Administrative"
    PERSONAL = "personal", "Personal"
    OTHER = "other", "Other"


class Office(models.Model):
    name = models.CharField(max_length=200, unique=True)
    address = models.TextField(blank=True)
    timezone = models.CharField(max_length=64, validators=[validate_timezone], default="UTC")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Therapist(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="therapist"
    )
    timezone = models.CharField(max_length=64, validators=[validate_timezone], help_text="IANA time zone.")
    # {"monday": ["09:00-12:00", "13:00-17:00"], ...} in the therapist's own zone; validated by
    # conflicts.engine.parse_working_hours (see scheduler.services.therapist_set_working_hours).
    working_hours = models.JSONField(default=dict, blank=True)
    offices = models.ManyToManyField(Office, blank=True, related_name="therapists")
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("view_therapist_calendar", "Can view this therapist's appointments"),
            ("change_therapist_calendar", "Can change this therapist's appointments"),
        ]

    def __str__(self) -> str:
        return self.name


class TimeOff(models.Model):
    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="time_off")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["start"]
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="timeoff_start_before_end")
        ]

    def __str__(self) -> str:
        return f"{self.therapist}: {self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M}"


class Service(models.Model):
    name = models.CharField(max_length=200, unique=True)
    # Allowed lengths in minutes, e.g. [45, 60]; the first is the default.
    durations = models.JSONField(default=list)
    buffer_before_minutes = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_BUFFER_MINUTES)]
    )
    buffer_after_minutes = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_BUFFER_MINUTES)]
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    buffer_before_minutes__lte=MAX_BUFFER_MINUTES,
                    buffer_after_minutes__lte=MAX_BUFFER_MINUTES,
                ),
                name="service_buffers_bounded",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        d = self.durations
        if not isinstance(d, list) or not d or not all(isinstance(m, int) and 5 <= m <= 24 * 60 for m in d):
            raise ValidationError({"durations": "Give one or more durations in whole minutes (5 to 1440)."})

    @property
    def default_duration(self) -> int:
        return self.durations[0]


class Patient(models.Model):
    """PHI, segregated: every field but `ref` is encrypted; read and written only through audited services.

    The rest of the hub knows a patient only by `ref`, a random pseudonym.
    """

    ref = models.CharField(max_length=40, unique=True, editable=False)
    name = EncryptedTextField()
    date_of_birth = EncryptedTextField(blank=True, help_text="YYYY-MM-DD")
    email = EncryptedTextField(blank=True)
    phone = EncryptedTextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ref"]

    def __str__(self) -> str:
        # Never the name: __str__ ends up in logs, admin messages and audit targets.
        return self.ref


class BusyBlock(models.Model):
    """Time a therapist is busy on an external calendar (no details: busy is all we keep)."""

    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="busy_blocks")
    start = models.DateTimeField()
    end = models.DateTimeField()
    source_system = models.CharField(max_length=32, choices=SourceSystem.choices)
    connection = models.ForeignKey(
        "integrations.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="busy_blocks"
    )
    external_id = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="busyblock_start_before_end"),
            models.UniqueConstraint(
                fields=["connection", "external_id"],
                condition=Q(connection__isnull=False) & ~Q(external_id=""),
                name="busyblock_unique_external",
            ),
        ]
        indexes = [models.Index(fields=["therapist", "start"])]

    def __str__(self) -> str:
        return f"Busy {self.therapist}: {self.start:%Y-%m-%d %H:%M}"


class Appointment(models.Model):
    """The canonical appointment. Hub bookings have source_system=hub and no external id."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source_system = models.CharField(max_length=32, choices=SourceSystem.choices, default=SourceSystem.HUB)
    external_id = models.CharField(max_length=255, blank=True)
    connection = models.ForeignKey(
        "integrations.Connection",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="appointments",
    )
    therapist = models.ForeignKey(Therapist, on_delete=models.PROTECT, related_name="appointments")
    office = models.ForeignKey(Office, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    patient_ref = models.CharField(max_length=64, blank=True, db_index=True)
    start = models.DateTimeField()
    end = models.DateTimeField()
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    status = models.CharField(
        max_length=16, choices=AppointmentStatus.choices, default=AppointmentStatus.SCHEDULED
    )
    type = models.CharField(max_length=16, choices=AppointmentType.choices, default=AppointmentType.CONSULT)
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=255, blank=True, help_text="Id of the recurring series, if any.")
    recurrence_id = models.CharField(
        max_length=64, blank=True, help_text="Original start of this occurrence."
    )
    version = models.PositiveIntegerField(default=1)
    # The source payload as received, kept for audit; encrypted because sources put PHI in it.
    raw = EncryptedJSONField(null=True, blank=True)
    override_reason = models.TextField(blank=True)
    # Set when staff merged this record into another as the same visit from a second source; the record
    # stays (its source still reports it) but no longer occupies time.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_duplicates"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="appointment_start_before_end"),
            models.CheckConstraint(
                condition=Q(status__in=AppointmentStatus.values), name="appointment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source_system__in=SourceSystem.values), name="appointment_source_valid"
            ),
            # An external appointment is identified by where it came from; hub bookings by uid.
            models.CheckConstraint(
                condition=Q(source_system=SourceSystem.HUB) | ~Q(external_id=""),
                name="appointment_external_has_id",
            ),
            models.UniqueConstraint(
                fields=["source_system", "connection", "external_id", "recurrence_id"],
                condition=Q(connection__isnull=False),
                name="appointment_unique_external",
            ),
            models.UniqueConstraint(
                fields=["source_system", "external_id", "recurrence_id"],
                condition=Q(connection__isnull=True) & ~Q(source_system=SourceSystem.HUB),
                name="appointment_unique_external_unconnected",
            ),
        ]
        indexes = [
            models.Index(fields=["therapist", "start"]),
            models.Index(fields=["start"]),
        ]

    def __str__(self) -> str:
        return f"Appointment {self.pk} ({self.get_source_system_display()}, {self.start:%Y-%m-%d %H:%M} UTC)"

    @property
    def is_occupying(self) -> bool:
        return self.status in OCCUPYING_STATUSES


class CalendarFeedToken(models.Model):
    """A secret URL at which one therapist's appointments are published as a PHI-free .ics feed.

    Only a SHA-256 of the token is stored; the URL is shown once, when it is created. Revoking keeps the
    row (for the audit trail) and the URL stops working at once.
    """

    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="feed_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the token, so staff can tell URLs apart without the secret.
    prefix = models.CharField(max_length=8, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["therapist", "revoked_at"])]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"Feed {self.prefix}… of {self.therapist} ({state})"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class IcsImport(models.Model):
    """One .ics upload being imported for a therapist; large files run as a background job."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="ics_imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Encrypted: people name files after patients. Shown to staff on the job, never audited.
    filename = EncryptedTextField(blank=True)
    size = models.PositiveIntegerField(default=0)
    as_busy = models.BooleanField(default=False)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    # The file itself, encrypted (event titles carry patient names); cleared once the import has run, or, for
    # a job that failed part-way (so it can be retried), ICS_IMPORT_RETRY_HOURS after it failed.
    data = EncryptedTextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent.")
    stage = models.CharField(max_length=40, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of a running job: a job with none for ICS_IMPORT_STALE_MINUTES is failed.
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created"]
        verbose_name = ".ics import"

    def __str__(self) -> str:
        return f"Import {self.pk} for {self.therapist} ({self.status})"
