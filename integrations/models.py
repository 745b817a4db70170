"""Connections to external platforms and the outbound write queue.

The connector framework, ledger, schedules and the queue's drain come with the integrations issue; the
models exist now so that hub writes are queued from the first booking on.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from lib.crypto import EncryptedJSONField
from scheduler.models import SourceSystem

# Platforms the hub writes appointments back to (two-way sync).
WRITABLE_PLATFORMS = (SourceSystem.GOOGLE, SourceSystem.OUTLOOK, SourceSystem.CALDAV)


class Connection(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        PAUSED = "paused", "Paused"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
        ERROR = "error", "Error"

    platform = models.CharField(max_length=32, choices=SourceSystem.choices)
    therapist = models.ForeignKey(
        "scheduler.Therapist",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connections",
        help_text="Empty for a practice-wide connection.",
    )
    display_name = models.CharField(max_length=200)
    credentials = EncryptedJSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    write_enabled = models.BooleanField(
        default=False, help_text="Write hub appointments back to this calendar."
    )
    # Non-secret settings: {"provider_map": {"<platform provider id>": <therapist id>},
    # "window_past_days": 30,
    # "window_future_days": 180}. Secrets live in `credentials` (encrypted).
    config = models.JSONField(default=dict, blank=True)
    cursor = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sync_interval_minutes = models.PositiveIntegerField(default=15)
    # Set when the platform asked us to slow down (429 + Retry-After, Kareo's throttling): no sync, scheduled
    # or requested, runs before it.
    sync_not_before = models.DateTimeField(null=True, blank=True)
    # Set when an early sync is requested and not yet started: further requests (a burst of webhooks) join
    # it instead of queueing one sync each. Cleared when a sync starts, so a change announced during a
    # running sync still gets a sync of its own.
    sync_requested_at = models.DateTimeField(null=True, blank=True)
    # Transient sync failures in a row (timeouts, 5xx): at FAILURES_BEFORE_ERROR the status turns `error`;
    # a successful sync sets it back to 0 (and the status to `ok`). Updated with the run record.
    failed_syncs = models.PositiveIntegerField(default=0)
    # When the last complete read of the window succeeded: the moving window re-reads it in full once this
    # is older than the full-read interval, so events that were beyond the horizon come in.
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    # Held while a sync fetches (outside any transaction: a slow platform must not hold the database).
    # A second sync meanwhile does not start; it leaves a request that the running one re-queues when it
    # ends. A worker that dies mid-fetch loses the lease when it expires.
    sync_lease_until = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    FAILURES_BEFORE_ERROR = 3

    class Meta:
        ordering = ["platform", "display_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(platform__in=SourceSystem.values) & ~Q(platform="hub"),
                name="connection_platform_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()}: {self.display_name}"


class ExternalRecord(models.Model):
    """The ledger: what we last saw of one external record, and which hub object it became."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="records")
    external_id = models.CharField(max_length=255)
    recurrence_id = models.CharField(max_length=64, blank=True)
    version = models.CharField(max_length=255, blank=True, help_text="etag / version / last-modified stamp")
    last_seen_at = models.DateTimeField()
    appointment = models.ForeignKey(
        "scheduler.Appointment", null=True, blank=True, on_delete=models.SET_NULL, related_name="records"
    )
    busy_block = models.ForeignKey(
        "scheduler.BusyBlock", null=True, blank=True, on_delete=models.SET_NULL, related_name="records"
    )
    tombstone_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "external_id", "recurrence_id"],
                name="externalrecord_unique_per_connection",
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.external_id}"


class SyncRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    full_read = models.BooleanField(default=False)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["connection", "-started_at"])]

    def __str__(self) -> str:
        return f"Sync {self.connection_id} {self.started_at:%Y-%m-%d %H:%M} ({self.status})"


class APIWriteQueue(models.Model):
    """One outbound change to one external calendar (a transactional outbox row)."""

    class Operation(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        DONE = "done", "Done"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead", "Dead (gave up)"

    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    target_system = models.CharField(max_length=32, choices=SourceSystem.choices)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="write_jobs")
    appointment = models.ForeignKey(
        "scheduler.Appointment", on_delete=models.CASCADE, related_name="write_jobs"
    )
    operation = models.CharField(max_length=8, choices=Operation.choices)
    # PHI-free projection of the appointment at the time of the change.
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    # The lease of the worker sending it: an in-flight job whose lease ran out (the worker died) is due
    # again; the platform event's deterministic id makes the resend converge instead of duplicating.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=255, blank=True, help_text="The platform's id of the event.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created"]
        verbose_name = "API write queue job"
        permissions = [("retry_apiwritequeue", "Can send a dead or failed write again")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["connection", "last_attempt_at"], name="writejob_conn_attempt_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "in_flight", "done", "failed", "dead"]),
                name="writejob_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="in_flight") | Q(claimed_until__isnull=False),
                name="writejob_in_flight_has_lease",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.appointment_id} → {self.target_system} ({self.status})"


class WebhookDelivery(models.Model):
    """A webhook delivery we accepted, by hash of its body: a redelivery is acknowledged and ignored."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_deliveries")
    delivery_id = models.CharField(max_length=64)
    event_ids = models.JSONField(default=list)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "delivery_id"], name="webhookdelivery_unique")
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.delivery_id[:12]}"
