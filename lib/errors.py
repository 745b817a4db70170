"""The one domain error base. Interfaces map it once: admin messages, JSON errors, command errors."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(ApplicationError):
    code = "invalid"
    http_status = 400


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class Forbidden(ApplicationError):
    code = "forbidden"
    http_status = 403


class BookingConflict(ApplicationError):
    code = "conflict"
    http_status = 409


class StaleVersion(ApplicationError):
    code = "stale_version"
    http_status = 412
