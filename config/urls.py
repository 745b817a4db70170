from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import include, path
from django.views import defaults

from integrations.views import webhook_receive
from lib.api import error_body
from scheduler.views import calendar_feed

admin.site.site_header = "Clinic scheduling hub"
admin.site.site_title = "Clinic hub"
admin.site.index_title = "Practice administration"


def home(request: HttpRequest) -> HttpResponse:
    """Each role's start page: staff the admin, therapists their calendar, everyone else the sign-in."""
    if not request.user.is_authenticated:
        return redirect_to_login("/")
    return redirect("/admin/" if request.user.is_staff else "/calendar/")


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("config.api_urls", "api"), namespace="api")),
    path("webhooks/<str:platform>/", webhook_receive, name="webhook"),
    path("integrations/google/", include("integrations.google.urls", namespace="google")),
    path("feeds/<str:token>.ics", calendar_feed, name="calendar-feed"),
    path("", include("scheduler.urls")),  # /calendar/, /calendar/board/, /login/
]


def _api_or_html(status: int, code: str, message: str, html_view: Any) -> Any:
    """API clients get the JSON error shape even for URLs no view matched; people get the HTML pages."""

    def handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse(error_body(code, message), status=status)
        return html_view(request, exception) if exception is not None else html_view(request)

    return handler


handler400 = _api_or_html(400, "bad_request", "Bad request.", defaults.bad_request)
handler403 = _api_or_html(403, "forbidden", "Forbidden.", defaults.permission_denied)
handler404 = _api_or_html(404, "not_found", "No such resource.", defaults.page_not_found)
handler500 = _api_or_html(500, "server_error", "Something went wrong on our side.", defaults.server_error)
