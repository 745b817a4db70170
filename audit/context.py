"""Request context (source address) for audit entries, set by middleware, read by audit_record."""

from __future__ import annotations

from contextvars import ContextVar

current_ip: ContextVar[str | None] = ContextVar("audit_current_ip", default=None)
