"""REST API for conflicts: list with filters, retrieve, resolve (conflicts.services.conflict_resolve)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import (
    IDEMPOTENCY_HEADER,
    AwareDateTimeField,
    Pagination,
    StrictCharField,
    StrictIntegerField,
    error_responses,
    idempotent,
    ids_parameter,
    query_datetime,
    query_ids,
    query_list,
)
from lib.errors import Forbidden, InvalidInput
from scheduler.models import SourceSystem
from scheduler.selectors import appointment_list_visible

from .models import Conflict, ConflictKind
from .selectors import conflict_get_for_viewer, conflict_list
from .services import Resolution, conflict_resolve


class ConflictOutput(serializers.ModelSerializer):
    appointment_ids = serializers.SerializerMethodField()
    busy_block_ids = serializers.SerializerMethodField()

    class Meta:
        model = Conflict
        fields = [
            "id",
            "kind",
            "status",
            "therapist",
            "appointment_ids",
            "busy_block_ids",
            "start",
            "end",
            "detected_at",
            "resolution",
            "resolved_by",
            "resolved_at",
            "note",
        ]

    def get_appointment_ids(self, obj: Conflict) -> list[int]:
        visible: set[int] | None = self.context.get("visible_ids")
        ids = sorted(a.pk for a in obj.appointments.all())
        return ids if visible is None else [i for i in ids if i in visible]

    def get_busy_block_ids(self, obj: Conflict) -> list[int]:
        return sorted(b.pk for b in obj.busy_blocks.all())


def _context(request: Request, conflicts: list[Conflict]) -> dict[str, Any]:
    """Therapists see the ids of their own appointments only, not a colleague's in the same conflict."""
    if request.user.has_perm("conflicts.view_conflict"):
        return {}
    ids = {a.pk for c in conflicts for a in c.appointments.all()}
    return {
        "visible_ids": set(
            appointment_list_visible(viewer=request.user).filter(pk__in=ids).values_list("pk", flat=True)
        )
    }


class ConflictListApi(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="conflicts_list",
        parameters=[
            OpenApiParameter("kind", str, enum=ConflictKind.values, many=True),
            OpenApiParameter("status", str, enum=Conflict.Status.values, many=True),
            ids_parameter("therapist", "Therapist ids."),
            ids_parameter("office", "Office ids."),
            OpenApiParameter("source_system", str, enum=SourceSystem.values, many=True),
            OpenApiParameter("start", str),
            OpenApiParameter("end", str),
        ],
        responses={200: ConflictOutput(many=True), **error_responses()},
    )
    def get(self, request: Request) -> Response:
        qs = conflict_list(
            viewer=request.user,
            kinds=query_list(request, "kind", ConflictKind.values),
            statuses=query_list(request, "status", Conflict.Status.values),
            therapist_ids=query_ids(request, "therapist"),
            office_ids=query_ids(request, "office"),
            source_systems=query_list(request, "source_system", SourceSystem.values),
            start=query_datetime(request, "start", required=False),
            end=query_datetime(request, "end", required=False),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(
            ConflictOutput(page, many=True, context=_context(request, page)).data
        )


class ConflictDetailApi(APIView):
    @extend_schema(operation_id="conflicts_retrieve", responses={200: ConflictOutput, **error_responses(404)})
    def get(self, request: Request, pk: int) -> Response:
        conflict = conflict_get_for_viewer(viewer=request.user, pk=pk)
        return Response(ConflictOutput(conflict, context=_context(request, [conflict])).data)


class ConflictResolveApi(APIView):
    class ResolveInput(serializers.Serializer):
        action = serializers.ChoiceField(choices=list(Resolution.ALL))
        appointment = StrictIntegerField(required=False, allow_null=True)
        start = AwareDateTimeField(required=False, allow_null=True)
        end = AwareDateTimeField(required=False, allow_null=True)
        note = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(
        operation_id="conflicts_resolve",
        request=ResolveInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={200: ConflictOutput, **error_responses(403, 404, 409, 422)},
        description="cancel, reschedule (new start), merge (keep `appointment`), accept (note), dismiss.",
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        conflict = conflict_get_for_viewer(viewer=request.user, pk=pk)
        if not request.user.has_perm("conflicts.change_conflict"):
            raise Forbidden("Only Admin and Front desk resolve conflicts.")
        if not isinstance(request.data, dict):
            raise InvalidInput("The request body must be a JSON object.")
        serializer = self.ResolveInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        appointment = None
        if data.get("appointment") is not None:
            appointment = conflict.appointments.filter(pk=data["appointment"]).first()
            if appointment is None:
                raise InvalidInput("Choose one of the appointments in this conflict.")
        conflict = conflict_resolve(
            actor=request.user,
            conflict=conflict,
            action=data["action"],
            appointment=appointment,
            start=data.get("start"),
            end=data.get("end"),
            note=data["note"],
        )
        return Response(ConflictOutput(conflict).data)
