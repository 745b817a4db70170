"""API conventions shared by every app's apis.py: one error shape, aware datetimes, pagination, ETags,
and Idempotency-Key replay for state-changing POSTs.

Error shape (documented in the OpenAPI schema as `Error`):
    {"error": {"code": "<stable machine code>", "message": "<human sentence>", "details": {...}}}
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from lib.errors import ApplicationError, InvalidInput
from lib.ids import parse_id, parse_whole
from lib.timeutil import instant_in_range

# --- errors ---------------------------------------------------------------------------------------

_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain errors and DRF's own to the one error shape; anything else is a real 500."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "; ".join(_flatten(details)) or "Invalid input."
        response.data = error_body(code, message, details)
    else:
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


def _flatten(details: Any, prefix: str = "") -> list[str]:
    if isinstance(details, dict):
        return [
            m
            for k, v in details.items()
            for m in _flatten(v, f"{prefix}{k}: " if k != "non_field_errors" else prefix)
        ]
    if isinstance(details, list):
        return [m for v in details for m in _flatten(v, prefix)]
    return [f"{prefix}{details}"]


ERROR_SCHEMA = inline_serializer(
    "Error",
    fields={
        "error": inline_serializer(
            "ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses an endpoint documents (401 and 429 apply to every endpoint)."""
    return {s: OpenApiResponse(ERROR_SCHEMA) for s in sorted({400, 401, 429, *statuses})}


# --- fields and pagination ------------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a UTC offset; a naive value is refused rather than guessed."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well-formed but impossible, e.g. 12:99
            parsed = None
        if parsed is None:
            raise serializers.ValidationError(
                "Expected an ISO 8601 date-time, e.g. 2026-12-07T10:00:00-05:00."
            )
        if parsed.tzinfo is None:
            raise serializers.ValidationError(
                "Include a UTC offset (e.g. +00:00 or -05:00); naive times are ambiguous."
            )
        try:
            return instant_in_range(parsed)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from exc


class StrictCharField(serializers.CharField):
    """A string, not a number coerced into one: the schema says string, so 0 is a type error."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer, not "5" or true coerced into one."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("Must be an integer.")
        return super().to_internal_value(data)


def query_datetime(request: Request, name: str, *, required: bool = True) -> datetime | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        if required:
            raise InvalidInput(f"The query parameter {name!r} is required (ISO 8601 with offset).")
        return None
    try:
        return AwareDateTimeField().to_internal_value(raw.replace(" ", "+"))  # a raw '+' arrives as a space
    except serializers.ValidationError as exc:
        raise InvalidInput(f"{name}: {exc.detail[0]}") from exc


def query_ids(request: Request, name: str) -> list[int]:
    """Repeated (`?x=1&x=2`) or comma-separated (`?x=1,2`) positive integer ids."""
    values = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip()]
    ids = [parse_id(v) for v in values]
    if None in ids:
        shown = ", ".join(values)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise InvalidInput(f"{name} takes positive integer ids, got {shown!r}.")
    return [i for i in ids if i is not None]


def query_list(request: Request, name: str, allowed: list[str]) -> list[str]:
    """Repeated or comma-separated values from a fixed set; an empty or unknown value is refused."""
    values = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",")]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        shown = ", ".join(repr(v) for v in unknown)
        raise InvalidInput(f"{name}: unknown value(s) {shown}; allowed: {', '.join(allowed)}.")
    return values


def ids_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, description=f"{description} Comma-separated or repeated.")


class Pagination(pagination.LimitOffsetPagination):
    """limit/offset; a malformed value is a 400 rather than silently replaced by the default."""

    default_limit = 100
    max_limit = 1000

    def _strict(self, request: Request, name: str, minimum: int) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        value = parse_whole(values[0], minimum=minimum) if len(values) == 1 else None
        if value is None:
            raise InvalidInput(f"{name} must be one whole number, at least {minimum}.")
        return value

    def get_limit(self, request: Request) -> int | None:
        limit = self._strict(request, self.limit_query_param, 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._strict(request, self.offset_query_param, 0) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"]["minimum"] = 1 if param["name"] == self.limit_query_param else 0
        return params


# --- ETag / If-Match ------------------------------------------------------------------------------


def etag_for(pk: int, version: int) -> str:
    return f'"{pk}-v{version}"'


def if_match_version(request: Request, pk: int) -> int | None:
    """The version the client last saw, from If-Match; None when absent. A foreign tag is stale."""
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/")
    prefix = f'"{pk}-v'
    version = parse_whole(tag[len(prefix) : -1]) if tag.startswith(prefix) and tag.endswith('"') else None
    if version is not None:
        return version
    return -1  # matches no version: the service answers 412


# --- Idempotency-Key ------------------------------------------------------------------------------


def _fingerprint_data(data: Any) -> Any:
    """The request body as the idempotency fingerprint sees it: uploaded files by the hash of their content
    (their str() is only the name), form fields with all their values."""
    from django.core.files.uploadedfile import UploadedFile

    def value(v: Any) -> Any:
        if isinstance(v, UploadedFile):
            digest = hashlib.sha256()
            for chunk in v.chunks():
                digest.update(chunk)
            v.seek(0)
            return f"file:{digest.hexdigest()}"
        return v

    if hasattr(data, "getlist"):  # a QueryDict (form or multipart body)
        return {key: [value(v) for v in data.getlist(key)] for key in data}
    return data


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Replay the first response for a repeated Idempotency-Key with the same body; 422 for a different one.

    The key row is inserted first, in the same transaction as the work: a concurrent duplicate waits on
    the unique key and then replays, and a failed request leaves no key behind.
    """
    from accounts.models import IdempotencyKey

    @functools.wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view_method(self, request, *args, **kwargs)
        if len(key) > 200:
            raise InvalidInput("Idempotency-Key is at most 200 characters.")
        fingerprint = hashlib.sha256(
            json.dumps(
                [request.method, request.path, _fingerprint_data(request.data)], sort_keys=True, default=str
            ).encode()
        ).hexdigest()
        expired_before = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
        try:
            with transaction.atomic():
                # An expired key is free again (the purge task may not have run yet).
                IdempotencyKey.objects.filter(user=request.user, key=key, created__lt=expired_before).delete()
                record = IdempotencyKey.objects.create(user=request.user, key=key, fingerprint=fingerprint)
                response = view_method(self, request, *args, **kwargs)
                if response.status_code >= 400:
                    transaction.set_rollback(True)  # a refused request may be retried with the same key
                    return response
                record.status_code = response.status_code
                record.body = response.data
                record.headers = {h: response[h] for h in ("ETag", "Location") if h in response}
                record.save(update_fields=["status_code", "body", "headers"])
                return response
        except IntegrityError:
            pass
        record = IdempotencyKey.objects.get(user=request.user, key=key)
        if record.fingerprint != fingerprint:
            return Response(
                error_body(
                    "idempotency_key_reused", "This Idempotency-Key was used with a different request."
                ),
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        replay = Response(record.body, status=record.status_code, headers=record.headers)
        replay["Idempotent-Replayed"] = "true"
        return replay

    return wrapper


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Repeat the request safely: the same key and body return the first response.",
)
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag you last read; a stale one answers 412 and changes nothing.",
)
