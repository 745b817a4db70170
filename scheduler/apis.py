"""REST API for scheduling: thin views over scheduler.services and scheduler.selectors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import (
    IDEMPOTENCY_HEADER,
    IF_MATCH_HEADER,
    AwareDateTimeField,
    Pagination,
    StrictCharField,
    StrictIntegerField,
    error_responses,
    etag_for,
    idempotent,
    ids_parameter,
    if_match_version,
    query_datetime,
    query_ids,
    query_list,
)
from lib.errors import Forbidden, InvalidInput, NotFound
from lib.ids import parse_whole

from . import ical, selectors, services
from .models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Office,
    Patient,
    Service,
    SourceSystem,
    Therapist,
)


class AppointmentOutput(serializers.ModelSerializer):
    start_local = serializers.SerializerMethodField()
    end_local = serializers.SerializerMethodField()

    class Meta:
        model = Appointment
        fields = [
            "id",
            "uid",
            "therapist",
            "office",
            "service",
            "type",
            "status",
            "source_system",
            "external_id",
            "patient_ref",
            "start",
            "end",
            "timezone",
            "start_local",
            "end_local",
            "version",
            "series",
            "recurrence_id",
            "merged_into",
            "created",
            "updated",
        ]

    def get_start_local(self, obj: Appointment) -> str:
        return obj.start.astimezone(ZoneInfo(obj.timezone)).isoformat()

    def get_end_local(self, obj: Appointment) -> str:
        return obj.end.astimezone(ZoneInfo(obj.timezone)).isoformat()


def _appointment_response(appointment: Appointment, code: int = status.HTTP_200_OK) -> Response:
    return Response(
        AppointmentOutput(appointment).data,
        status=code,
        headers={"ETag": etag_for(appointment.pk, appointment.version)},
    )


def _get_visible(request: Request, pk: int) -> Appointment:
    return selectors.appointment_get_for_viewer(viewer=request.user, pk=pk)


def _get_changeable(request: Request, pk: int) -> Appointment:
    """404 when the caller may not see it; 403 when they may see but not change it."""
    appointment = _get_visible(request, pk)
    if not selectors.appointment_can_change(user=request.user, appointment=appointment):
        raise Forbidden("You may view this appointment but not change it.")
    return appointment


def _pk_of(model: type, pk: int | None, what: str) -> Any:
    if pk is None:
        return None
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise InvalidInput(f"Unknown {what} {pk}.")
    return obj


class AppointmentListApi(APIView):
    pagination_class = Pagination

    class BookingInput(serializers.Serializer):
        therapist = StrictIntegerField()
        start = AwareDateTimeField()
        end = AwareDateTimeField()
        service = StrictIntegerField(required=False, allow_null=True)
        type = serializers.ChoiceField(choices=AppointmentType.choices, default=AppointmentType.CONSULT)
        office = StrictIntegerField(required=False, allow_null=True)
        patient_ref = StrictCharField(required=False, allow_blank=True, default="", max_length=64)
        status = serializers.ChoiceField(
            choices=[AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED],
            default=AppointmentStatus.SCHEDULED,
        )
        override_reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(
        operation_id="appointments_list",
        parameters=[
            OpenApiParameter("start", str, description="ISO 8601 with offset: appointments ending after it."),
            OpenApiParameter(
                "end", str, description="ISO 8601 with offset: appointments starting before it."
            ),
            ids_parameter("therapist", "Therapist ids."),
            ids_parameter("office", "Office ids."),
            OpenApiParameter("source_system", str, enum=SourceSystem.values, many=True),
            OpenApiParameter("status", str, enum=AppointmentStatus.values, many=True),
        ],
        responses={200: AppointmentOutput(many=True), **error_responses()},
    )
    def get(self, request: Request) -> Response:
        qs = selectors.appointment_list_for_calendar(
            viewer=request.user,
            start=query_datetime(request, "start", required=False),
            end=query_datetime(request, "end", required=False),
            therapist_ids=query_ids(request, "therapist"),
            office_ids=query_ids(request, "office"),
            source_systems=query_list(request, "source_system", SourceSystem.values),
            statuses=query_list(request, "status", AppointmentStatus.values),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AppointmentOutput(page, many=True).data)

    @extend_schema(
        operation_id="appointments_book",
        request=BookingInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: AppointmentOutput, **error_responses(403, 409, 422)},
        description="Book a hub appointment. A clash answers 409 with `details.conflicting_appointment_ids`.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _valid(self.BookingInput, request.data)
        therapist = selectors.therapist_list_visible(viewer=request.user).filter(pk=data["therapist"]).first()
        if therapist is None:
            raise InvalidInput(f"Unknown therapist {data['therapist']}.")
        if not request.user.has_perm("scheduler.add_appointment"):
            raise Forbidden("You may not book appointments.")
        appointment = services.appointment_book(
            actor=request.user,
            therapist=therapist,
            start=data["start"],
            end=data["end"],
            service=_pk_of(Service, data.get("service"), "service"),
            type=data["type"],
            office=_pk_of(Office, data.get("office"), "office"),
            patient_ref=data["patient_ref"],
            status=data["status"],
            override_reason=data["override_reason"],
        )
        return _appointment_response(appointment, status.HTTP_201_CREATED)


def _valid(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class AppointmentDetailApi(APIView):
    class AppointmentUpdateInput(serializers.Serializer):
        start = AwareDateTimeField(required=False)
        end = AwareDateTimeField(required=False)
        override_reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
        office = StrictIntegerField(required=False, allow_null=True)
        type = serializers.ChoiceField(choices=AppointmentType.choices, required=False)
        patient_ref = StrictCharField(required=False, allow_blank=True, max_length=64)

    @extend_schema(
        operation_id="appointments_retrieve", responses={200: AppointmentOutput, **error_responses(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        return _appointment_response(_get_visible(request, pk))

    @extend_schema(
        operation_id="appointments_update",
        request=AppointmentUpdateInput,
        parameters=[IF_MATCH_HEADER],
        responses={200: AppointmentOutput, **error_responses(403, 404, 409, 412)},
        description="Reschedule (start/end) and/or change office, type or patient, in one transaction.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        appointment = _get_changeable(request, pk)
        data = _valid(self.AppointmentUpdateInput, request.data, partial=True)
        expected = if_match_version(request, pk)
        details = {k: data[k] for k in ("type", "patient_ref") if k in data}
        if "office" in data:
            details["office"] = _pk_of(Office, data["office"], "office")
        if not details and "start" not in data and "end" not in data:
            raise InvalidInput("Nothing to change: give start/end, office, type or patient_ref.")
        with transaction.atomic():
            if "start" in data or "end" in data:
                start = data.get("start", appointment.start)
                end = data.get("end") or (
                    start + (appointment.end - appointment.start) if "start" in data else None
                )
                appointment = services.appointment_reschedule(
                    actor=request.user,
                    appointment=appointment,
                    start=start,
                    end=end,
                    expected_version=expected,
                    override_reason=data.get("override_reason", ""),
                )
                expected = None
            if details:
                appointment = services.appointment_update_details(
                    actor=request.user, appointment=appointment, expected_version=expected, **details
                )
        return _appointment_response(appointment)


class AppointmentCancelApi(APIView):
    class CancelInput(serializers.Serializer):
        reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(
        operation_id="appointments_cancel",
        request=CancelInput,
        parameters=[IF_MATCH_HEADER, IDEMPOTENCY_HEADER],
        responses={200: AppointmentOutput, **error_responses(403, 404, 412)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        appointment = _get_changeable(request, pk)
        data = _valid(self.CancelInput, request.data or {})
        appointment = services.appointment_cancel(
            actor=request.user,
            appointment=appointment,
            reason=data["reason"],
            expected_version=if_match_version(request, pk),
        )
        return _appointment_response(appointment)


class AppointmentStatusApi(APIView):
    class StatusInput(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[
                AppointmentStatus.SCHEDULED,
                AppointmentStatus.CONFIRMED,
                AppointmentStatus.COMPLETED,
                AppointmentStatus.NO_SHOW,
            ]
        )
        override_reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(
        operation_id="appointments_set_status",
        request=StatusInput,
        parameters=[IF_MATCH_HEADER, IDEMPOTENCY_HEADER],
        responses={200: AppointmentOutput, **error_responses(403, 404, 409, 412)},
        description="Confirm, complete, mark no-show, or restore a cancelled appointment (`scheduled`).",
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        appointment = _get_changeable(request, pk)
        data = _valid(self.StatusInput, request.data)
        appointment = services.appointment_set_status(
            actor=request.user,
            appointment=appointment,
            status=data["status"],
            expected_version=if_match_version(request, pk),
            override_reason=data["override_reason"],
        )
        return _appointment_response(appointment)


ICAL_RESPONSE = {
    (200, "text/calendar"): OpenApiResponse(str, description="RFC 5545 (METHOD:PUBLISH)"),
}
MAX_ICAL_EXPORT_DAYS = 400


def _ics_response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class AppointmentIcalApi(APIView):
    @extend_schema(
        operation_id="appointments_ical",
        parameters=[
            OpenApiParameter(
                "audience",
                str,
                enum=["staff", "patient"],
                description="`staff` (default): PHI-free. `patient`: with the service, therapist and office, "
                "for sending to the appointment's own patient (Admin and Front desk only; audited).",
            )
        ],
        responses={**ICAL_RESPONSE, **error_responses(403, 404)},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        appointment = _get_visible(request, pk)
        audience = request.query_params.get("audience", ical.STAFF)
        if audience not in (ical.STAFF, ical.PATIENT):
            raise InvalidInput("audience must be 'staff' or 'patient'.")
        if audience == ical.PATIENT:
            appointment = selectors.appointment_get_for_patient_export(viewer=request.user, pk=pk)
        return _ics_response(
            ical.appointments_to_ics([appointment], audience=audience), f"appointment-{appointment.pk}.ics"
        )


class AppointmentIcalExportApi(APIView):
    @extend_schema(
        operation_id="appointments_ical_export",
        parameters=[
            OpenApiParameter("start", str, required=True, description="ISO 8601 with offset."),
            OpenApiParameter(
                "end",
                str,
                required=True,
                description=f"ISO 8601 with offset; at most {MAX_ICAL_EXPORT_DAYS} days on.",
            ),
            ids_parameter("therapist", "Therapist ids."),
            ids_parameter("office", "Office ids."),
            OpenApiParameter("source_system", str, enum=SourceSystem.values, many=True),
            OpenApiParameter("status", str, enum=AppointmentStatus.values, many=True),
        ],
        responses={**ICAL_RESPONSE, **error_responses()},
        description="The appointments you may see in a range, filtered as the list, as one PHI-free .ics.",
    )
    def get(self, request: Request) -> HttpResponse:
        start, end = query_datetime(request, "start"), query_datetime(request, "end")
        if end - start > timedelta(days=MAX_ICAL_EXPORT_DAYS):
            raise InvalidInput(f"Export at most {MAX_ICAL_EXPORT_DAYS} days at a time.")
        qs = (
            selectors.appointment_list_for_calendar(
                viewer=request.user,
                start=start,
                end=end,
                therapist_ids=query_ids(request, "therapist"),
                office_ids=query_ids(request, "office"),
                source_systems=query_list(request, "source_system", SourceSystem.values),
                statuses=query_list(request, "status", AppointmentStatus.values),
            )
            .select_related(None)
            .only(*ical.EXPORT_FIELDS)
        )
        return _ics_response(ical.appointments_to_ics(qs), f"appointments-{start:%Y%m%d}-{end:%Y%m%d}.ics")


CALENDAR_SCHEMA = inline_serializer(
    "Calendar",
    fields={
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(),
        "therapists": serializers.ListField(child=serializers.DictField()),
        "appointments": serializers.ListField(child=serializers.DictField()),
        "busy_blocks": serializers.ListField(child=serializers.DictField()),
        "conflicts": serializers.ListField(child=serializers.DictField()),
    },
)


class CalendarApi(APIView):
    @extend_schema(
        operation_id="calendar",
        parameters=[
            OpenApiParameter("start", str, required=True, description="ISO 8601 with offset."),
            OpenApiParameter(
                "end", str, required=True, description="ISO 8601 with offset; at most 62 days on."
            ),
            ids_parameter("therapist", "Therapist ids."),
            ids_parameter("office", "Office ids."),
            OpenApiParameter("source_system", str, enum=SourceSystem.values, many=True),
            OpenApiParameter("status", str, enum=AppointmentStatus.values, many=True),
        ],
        responses={200: CALENDAR_SCHEMA, **error_responses()},
        description="Appointments, busy blocks and open conflict markers for a range, in one response.",
    )
    def get(self, request: Request) -> Response:
        data = selectors.calendar_for_range(
            viewer=request.user,
            start=query_datetime(request, "start"),
            end=query_datetime(request, "end"),
            therapist_ids=query_ids(request, "therapist"),
            office_ids=query_ids(request, "office"),
            source_systems=query_list(request, "source_system", SourceSystem.values),
            statuses=query_list(request, "status", AppointmentStatus.values),
        )
        return Response(data)


class TherapistOutput(serializers.ModelSerializer):
    class Meta:
        model = Therapist
        fields = ["id", "name", "email", "timezone", "working_hours", "offices", "active"]


def _get_therapist(request: Request, pk: int) -> Therapist:
    therapist = selectors.therapist_list_visible(viewer=request.user).filter(pk=pk).first()
    if therapist is None:
        raise NotFound(f"Therapist {pk} not found.")
    return therapist


class TherapistListApi(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="therapists_list",
        responses={200: TherapistOutput(many=True), **error_responses()},
    )
    def get(self, request: Request) -> Response:
        qs = (
            selectors.therapist_list_visible(viewer=request.user)
            .prefetch_related("offices")
            .order_by("name", "pk")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TherapistOutput(page, many=True).data)


class TherapistDetailApi(APIView):
    @extend_schema(
        operation_id="therapists_retrieve", responses={200: TherapistOutput, **error_responses(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(TherapistOutput(_get_therapist(request, pk)).data)


class TherapistWorkingHoursApi(APIView):
    class WorkingHoursInput(serializers.Serializer):
        working_hours = serializers.DictField(child=serializers.ListField(child=StrictCharField()))

    @extend_schema(
        operation_id="therapists_working_hours_set",
        request=WorkingHoursInput,
        responses={200: TherapistOutput, **error_responses(403, 404)},
        description='Weekly hours in the therapist\'s zone, e.g. {"monday": ["09:00-12:00"]}.',
    )
    def put(self, request: Request, pk: int) -> Response:
        therapist = _get_therapist(request, pk)
        if not request.user.has_perm("scheduler.change_therapist"):
            raise Forbidden("You may not change working hours.")
        data = _valid(self.WorkingHoursInput, request.data)
        therapist = services.therapist_set_working_hours(
            actor=request.user, therapist=therapist, working_hours=data["working_hours"]
        )
        return Response(TherapistOutput(therapist).data)


FREE_SLOTS_SCHEMA = inline_serializer(
    "FreeSlots",
    fields={
        "therapist": serializers.IntegerField(),
        "timezone": serializers.CharField(),
        "service": serializers.IntegerField(),
        "duration_minutes": serializers.IntegerField(),
        "slots": serializers.ListField(
            child=inline_serializer(
                "FreeSlot",
                fields={
                    "start": serializers.DateTimeField(),
                    "end": serializers.DateTimeField(),
                    "start_local": serializers.DateTimeField(),
                    "end_local": serializers.DateTimeField(),
                },
            )
        ),
    },
)


class TherapistFreeSlotsApi(APIView):
    @extend_schema(
        operation_id="therapists_free_slots",
        parameters=[
            OpenApiParameter("start", str, required=True),
            OpenApiParameter("end", str, required=True),
            OpenApiParameter("service", int, required=True),
            OpenApiParameter("duration", int, description="Minutes; one of the service's durations."),
        ],
        responses={200: FREE_SLOTS_SCHEMA, **error_responses(404)},
        description="Bookable slots from local data only: working hours, appointments, busy blocks, buffers.",
    )
    def get(self, request: Request, pk: int) -> Response:
        therapist = _get_therapist(request, pk)
        service_ids = query_ids(request, "service")
        if len(service_ids) != 1:
            raise InvalidInput("Give exactly one service id.")
        service = _pk_of(Service, service_ids[0], "service")
        duration = request.query_params.get("duration")
        chosen = parse_whole(duration) if duration else None
        if duration is not None and chosen not in service.durations:
            raise InvalidInput(f"duration must be one of {service.durations} for {service}.")
        minutes = chosen or service.default_duration
        slots = selectors.therapist_free_slots(
            therapist=therapist,
            service=service,
            duration=timedelta(minutes=minutes),
            start=query_datetime(request, "start"),
            end=query_datetime(request, "end"),
        )
        zone = ZoneInfo(therapist.timezone)
        return Response(
            {
                "therapist": therapist.pk,
                "timezone": therapist.timezone,
                "service": service.pk,
                "duration_minutes": minutes,
                "slots": [
                    {
                        "start": s.isoformat(),
                        "end": e.isoformat(),
                        "start_local": s.astimezone(zone).isoformat(),
                        "end_local": e.astimezone(zone).isoformat(),
                    }
                    for s, e in slots
                ],
            }
        )


class ServiceOutput(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "name", "durations", "buffer_before_minutes", "buffer_after_minutes"]


class ServiceListApi(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="services_list",
        responses={200: ServiceOutput(many=True), **error_responses()},
        description="Active services; the first duration is the default length of a booking.",
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.service_list_active(), request, view=self)
        return paginator.get_paginated_response(ServiceOutput(page, many=True).data)


class OfficeOutput(serializers.ModelSerializer):
    class Meta:
        model = Office
        fields = ["id", "name", "timezone"]


class OfficeListApi(APIView):
    pagination_class = Pagination

    @extend_schema(operation_id="offices_list", responses={200: OfficeOutput(many=True), **error_responses()})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.office_list(), request, view=self)
        return paginator.get_paginated_response(OfficeOutput(page, many=True).data)


class PatientOutput(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["ref", "name", "date_of_birth", "email", "phone", "created", "updated"]


class PatientCreateApi(APIView):
    class PatientInput(serializers.Serializer):
        name = StrictCharField(max_length=200)
        date_of_birth = StrictCharField(required=False, allow_blank=True, default="", max_length=10)
        email = serializers.EmailField(required=False, allow_blank=True, default="")
        phone = StrictCharField(required=False, allow_blank=True, default="", max_length=40)

    @extend_schema(
        operation_id="patients_create",
        request=PatientInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: PatientOutput, **error_responses(403, 422)},
        description="Admin and Front desk only. Returns the pseudonymous `ref` used by appointments.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        if not (
            selectors.patient_can_read(user=request.user) and request.user.has_perm("scheduler.add_patient")
        ):
            raise Forbidden("Only Admin and Front desk manage patients.")
        data = _valid(self.PatientInput, request.data)
        patient = services.patient_create(actor=request.user, **data)
        return Response(PatientOutput(patient).data, status=status.HTTP_201_CREATED)


class PatientDetailApi(APIView):
    @extend_schema(
        operation_id="patients_retrieve",
        responses={200: PatientOutput, **error_responses(403, 404)},
        description="A PHI read: Admin and Front desk only, and audited.",
    )
    def get(self, request: Request, ref: str) -> Response:
        return Response(PatientOutput(selectors.patient_get_for_viewer(viewer=request.user, ref=ref)).data)


class TimeOffApi(APIView):
    class TimeOffInput(serializers.Serializer):
        start = AwareDateTimeField()
        end = AwareDateTimeField()
        reason = StrictCharField(required=False, allow_blank=True, default="", max_length=200)

    @extend_schema(
        operation_id="therapists_time_off_add",
        request=TimeOffInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: inline_serializer(
                "TimeOff",
                fields={
                    "id": serializers.IntegerField(),
                    "start": serializers.DateTimeField(),
                    "end": serializers.DateTimeField(),
                    "reason": serializers.CharField(),
                },
            ),
            **error_responses(403, 404, 422),
        },
        description="Appointments in the period become outside-hours conflicts.",
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        therapist = _get_therapist(request, pk)
        if not request.user.has_perm("scheduler.add_timeoff"):
            raise Forbidden("You may not add time off.")
        data = _valid(self.TimeOffInput, request.data)
        period = services.time_off_add(actor=request.user, therapist=therapist, **data)
        return Response(
            {
                "id": period.pk,
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "reason": period.reason,
            },
            status=status.HTTP_201_CREATED,
        )


FEED_SCHEMA = inline_serializer(
    "CalendarFeed",
    fields={
        "therapist": serializers.IntegerField(),
        "url": serializers.CharField(help_text="Shown only now: only a hash of the token is stored."),
        "prefix": serializers.CharField(),
        "created": serializers.DateTimeField(),
    },
)


class TherapistCalendarFeedApi(APIView):
    @extend_schema(
        operation_id="therapists_calendar_feed_create",
        request=None,
        responses={201: FEED_SCHEMA, **error_responses(403, 404)},
        description="Create (or rotate: the previous URL stops working) the therapist's secret .ics feed URL."
        " Any calendar app can subscribe to it without a login; it carries no PHI.",
    )
    def post(self, request: Request, pk: int) -> Response:
        therapist = _get_therapist(request, pk)
        feed, token = services.calendar_feed_token_create(actor=request.user, therapist=therapist)
        url = request.build_absolute_uri(reverse("calendar-feed", kwargs={"token": token}))
        return Response(
            {"therapist": therapist.pk, "url": url, "prefix": feed.prefix, "created": feed.created},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        operation_id="therapists_calendar_feed_revoke",
        responses={204: None, **error_responses(403, 404)},
        description="Revoke the therapist's feed URL: it answers 404 from now on.",
    )
    def delete(self, request: Request, pk: int) -> Response:
        therapist = _get_therapist(request, pk)
        services.calendar_feed_token_revoke(actor=request.user, therapist=therapist)
        return Response(status=status.HTTP_204_NO_CONTENT)
