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
    cursor = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sync_interval_minutes = models.PositiveIntegerField(default=15)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

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
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created"]
        verbose_name = "API write queue job"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.operation} {self.appointment_id} → {self.target_system} ({self.status})"
