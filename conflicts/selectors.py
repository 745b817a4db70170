"""Reads of conflicts, filtered by what the viewer may see."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from lib.errors import NotFound
from scheduler.selectors import appointment_list_visible

from .models import Conflict


def conflict_list_visible(*, viewer: Any) -> QuerySet[Conflict]:
    """Staff see every conflict; a therapist those involving their own appointments."""
    if not getattr(viewer, "is_active", False):
        return Conflict.objects.none()
    if viewer.has_perm("conflicts.view_conflict"):
        return Conflict.objects.all()
    return Conflict.objects.filter(appointments__in=appointment_list_visible(viewer=viewer)).distinct()


def conflict_list(
    *,
    viewer: Any,
    kinds: list[str] | None = None,
    statuses: list[str] | None = None,
    therapist_ids: list[int] | None = None,
    office_ids: list[int] | None = None,
    source_systems: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Conflict]:
    qs = conflict_list_visible(viewer=viewer)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    if statuses:
        qs = qs.filter(status__in=statuses)
    if therapist_ids:
        qs = qs.filter(appointments__therapist_id__in=therapist_ids)
    if office_ids:
        qs = qs.filter(appointments__office_id__in=office_ids)
    if source_systems:
        qs = qs.filter(appointments__source_system__in=source_systems)
    if start is not None:
        qs = qs.filter(end__gt=start)
    if end is not None:
        qs = qs.filter(start__lt=end)
    if therapist_ids or office_ids or source_systems:
        qs = qs.distinct()
    return qs.order_by("-detected_at", "-pk").prefetch_related("appointments", "busy_blocks")


def conflict_get_for_viewer(*, viewer: Any, pk: int) -> Conflict:
    conflict = conflict_list_visible(viewer=viewer).filter(pk=pk).first()
    if conflict is None:
        raise NotFound(f"Conflict {pk} not found.")
    return conflict
