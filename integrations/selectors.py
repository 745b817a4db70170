"""Reads of connections, filtered by what the viewer may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from lib.errors import NotFound

from .models import Connection


def connection_list_visible(*, viewer: Any) -> QuerySet[Connection]:
    """Staff with the permission see every connection; a therapist their own."""
    if not getattr(viewer, "is_active", False):
        return Connection.objects.none()
    if viewer.has_perm("integrations.view_connection"):
        return Connection.objects.all()
    return Connection.objects.filter(therapist__user=viewer)


def connection_get_for_viewer(*, viewer: Any, pk: int) -> Connection:
    connection = connection_list_visible(viewer=viewer).filter(pk=pk).first()
    if connection is None:
        raise NotFound(f"Connection {pk} not found.")
    return connection
