from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ConflictKind(models.TextChoices):
    OVERLAP = "overlap", "Overlap"
    OUTSIDE_HOURS = "outside_hours", "Outside working hours"
    EXTERNAL_BUSY = "external_busy", "External busy time"
    PATIENT_OVERLAP = "patient_overlap", "Same patient twice"
    DUPLICATE = "duplicate", "Duplicate from two sources"


class Conflict(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    kind = models.CharField(max_length=20, choices=ConflictKind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # engine.Finding.fingerprint: re-detection finds the open row instead of adding a second one.
    fingerprint = models.CharField(max_length=255)
    therapist = models.ForeignKey(
        "scheduler.Therapist", null=True, blank=True, on_delete=models.CASCADE, related_name="conflicts"
    )
    appointments = models.ManyToManyField("scheduler.Appointment", related_name="conflicts")
    busy_blocks = models.ManyToManyField("scheduler.BusyBlock", blank=True, related_name="conflicts")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolution = models.CharField(max_length=40, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"], condition=Q(status="open"), name="conflict_one_open_per_finding"
            ),
        ]
        indexes = [models.Index(fields=["status", "kind"]), models.Index(fields=["therapist", "start"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"
