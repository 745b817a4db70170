"""/api/v1/ — the versioned REST API."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

import lib.ids  # noqa: F401  (registers <id:...>)
from accounts.apis import LogoutAllApi, LogoutApi, TokenObtainApi
from audit.apis import AuditLogListApi
from conflicts.apis import ConflictDetailApi, ConflictListApi, ConflictResolveApi
from integrations.apis import (
    ConnectionDetailApi,
    ConnectionListApi,
    ConnectionSyncApi,
    IcsImportCreateApi,
    IcsImportDetailApi,
    IcsImportRetryApi,
)
from scheduler import apis as scheduling

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/logout/", LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", LogoutAllApi.as_view(), name="auth-logout-all"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script under the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("appointments/", scheduling.AppointmentListApi.as_view(), name="appointments"),
    path("appointments/<id:pk>/", scheduling.AppointmentDetailApi.as_view(), name="appointment"),
    path(
        "appointments/<id:pk>/cancel/", scheduling.AppointmentCancelApi.as_view(), name="appointment-cancel"
    ),
    path(
        "appointments/<id:pk>/status/", scheduling.AppointmentStatusApi.as_view(), name="appointment-status"
    ),
    path("appointments/ical", scheduling.AppointmentIcalExportApi.as_view(), name="appointments-ical"),
    path("appointments/<id:pk>/ical", scheduling.AppointmentIcalApi.as_view(), name="appointment-ical"),
    path("calendar/", scheduling.CalendarApi.as_view(), name="calendar"),
    path("therapists/", scheduling.TherapistListApi.as_view(), name="therapists"),
    path("therapists/<id:pk>/", scheduling.TherapistDetailApi.as_view(), name="therapist"),
    path(
        "therapists/<id:pk>/working-hours/",
        scheduling.TherapistWorkingHoursApi.as_view(),
        name="therapist-working-hours",
    ),
    path(
        "therapists/<id:pk>/free-slots/",
        scheduling.TherapistFreeSlotsApi.as_view(),
        name="therapist-free-slots",
    ),
    path(
        "therapists/<id:pk>/calendar-feed/",
        scheduling.TherapistCalendarFeedApi.as_view(),
        name="therapist-calendar-feed",
    ),
    path("therapists/<id:pk>/time-off/", scheduling.TimeOffApi.as_view(), name="therapist-time-off"),
    path("services/", scheduling.ServiceListApi.as_view(), name="services"),
    path("offices/", scheduling.OfficeListApi.as_view(), name="offices"),
    path("patients/", scheduling.PatientCreateApi.as_view(), name="patients"),
    path("patients/<str:ref>/", scheduling.PatientDetailApi.as_view(), name="patient"),
    path("conflicts/", ConflictListApi.as_view(), name="conflicts"),
    path("conflicts/<id:pk>/", ConflictDetailApi.as_view(), name="conflict"),
    path("conflicts/<id:pk>/resolve/", ConflictResolveApi.as_view(), name="conflict-resolve"),
    path("connections/", ConnectionListApi.as_view(), name="connections"),
    path("connections/<id:pk>/", ConnectionDetailApi.as_view(), name="connection"),
    path("connections/<id:pk>/sync/", ConnectionSyncApi.as_view(), name="connection-sync"),
    path("imports/ics", IcsImportCreateApi.as_view(), name="imports-ics"),
    path("imports/<id:pk>", IcsImportDetailApi.as_view(), name="import"),
    path("imports/<id:pk>/retry/", IcsImportRetryApi.as_view(), name="import-retry"),
    path("audit/", AuditLogListApi.as_view(), name="audit"),
]
