"""django-axes' lockout response: the API's JSON error shape on /api/, Axes' own page elsewhere."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from lib.api import error_body


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            error_body(
                "locked_out",
                "Too many failed sign-in attempts; try again later.",
                {"retry_after_seconds": seconds},
            ),
            status=429,
        )
    else:
        from django.shortcuts import render

        response = render(
            request,
            "scheduler/locked_out.html",
            {"minutes": seconds // 60},
            status=429,
        )
    response["Retry-After"] = str(seconds)
    return response
