"""REST API for connections: status only, never credentials."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import IDEMPOTENCY_HEADER, Pagination, error_body, error_responses, idempotent
from lib.errors import Forbidden, InvalidInput, NotFound
from scheduler.models import IcsImport
from scheduler.selectors import therapist_list_visible

from .ics_feed.services import ics_import_reap_stale, ics_import_retry, ics_import_submit, import_window
from .models import Connection, SyncRun
from .selectors import connection_get_for_viewer, connection_list_visible
from .services import connection_request_sync


class SyncRunOutput(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = [
            "id",
            "started_at",
            "finished_at",
            "status",
            "full_read",
            "fetched",
            "created",
            "updated",
            "cancelled",
            "unchanged",
            "errors",
        ]


class ConnectionOutput(serializers.ModelSerializer):
    recent_runs = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        # Deliberately no credentials and no cursor.
        fields = [
            "id",
            "platform",
            "display_name",
            "therapist",
            "status",
            "write_enabled",
            "last_synced_at",
            "last_error",
            "sync_interval_minutes",
            "recent_runs",
        ]

    @extend_schema_field(SyncRunOutput(many=True))
    def get_recent_runs(self, obj: Connection) -> list[dict[str, object]]:
        return SyncRunOutput(obj.runs.order_by("-started_at")[:5], many=True).data


class ConnectionListApi(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="connections_list", responses={200: ConnectionOutput(many=True), **error_responses()}
    )
    def get(self, request: Request) -> Response:
        qs = connection_list_visible(viewer=request.user).order_by("platform", "display_name", "pk")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ConnectionOutput(page, many=True).data)


class ConnectionDetailApi(APIView):
    @extend_schema(
        operation_id="connections_retrieve", responses={200: ConnectionOutput, **error_responses(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ConnectionOutput(connection_get_for_viewer(viewer=request.user, pk=pk)).data)


class ConnectionSyncApi(APIView):
    @extend_schema(
        operation_id="connections_sync",
        request=None,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            202: inline_serializer("SyncRequested", fields={"detail": serializers.CharField()}),
            **error_responses(403, 404, 422),
        },
        description="Ask for a sync now (run by a worker); paused or needs-reauth connections do not run.",
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        connection = connection_get_for_viewer(viewer=request.user, pk=pk)
        if not request.user.has_perm("integrations.change_connection"):
            raise Forbidden("You may not start a sync.")
        connection_request_sync(actor=request.user, connection=connection)
        return Response({"detail": "Sync requested."}, status=status.HTTP_202_ACCEPTED)


# --- .ics imports ---------------------------------------------------------------------------------


class IcsImportOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = IcsImport
        # Never the file itself.
        fields = [
            "id",
            "url",
            "therapist",
            "filename",
            "size",
            "as_busy",
            "window_start",
            "window_end",
            "status",
            "progress",
            "stage",
            "counts",
            "error",
            "created",
            "started_at",
            "progress_at",
            "finished_at",
            "attempts",
        ]

    def get_url(self, obj: IcsImport) -> str:
        return reverse("api:import", kwargs={"pk": obj.pk})


class IcsImportCreateApi(APIView):
    parser_classes = [MultiPartParser]

    class ImportInput(serializers.Serializer):
        file = serializers.FileField()
        therapist = serializers.IntegerField()
        as_busy = serializers.BooleanField(default=False)
        window_start = serializers.DateField(required=False)
        window_end = serializers.DateField(required=False)

    @extend_schema(
        operation_id="imports_ics_create",
        request={"multipart/form-data": ImportInput},
        responses={
            201: IcsImportOutput,
            202: IcsImportOutput,
            **error_responses(403, 413),
        },
        description=(
            "Import an .ics file into a therapist's calendar (Admin and Front desk). Recurring events are "
            "expanded over the window (whole days in the therapist's zone; `window_end` inclusive; defaults "
            "from ICS_IMPORT_WINDOW_*_DAYS). Small files are imported at once (201, or 400 naming the line "
            "of a malformed file, nothing imported); larger ones run in the background (202; follow "
            "`Location`)."
        ),
    )
    @idempotent
    def post(self, request: Request) -> Response:
        if not request.user.has_perm("scheduler.add_appointment"):
            raise Forbidden("You may not import calendars.")
        serializer = self.ImportInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        therapist = therapist_list_visible(viewer=request.user).filter(pk=data["therapist"]).first()
        if therapist is None:
            raise InvalidInput(f"Unknown therapist {data['therapist']}.")
        upload = data["file"]
        if upload.size > settings.ICS_IMPORT_MAX_BYTES:
            return Response(
                error_body(
                    "too_large",
                    f"The file is {upload.size} bytes; the limit is {settings.ICS_IMPORT_MAX_BYTES}.",
                ),
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        window = import_window(therapist.timezone, data.get("window_start"), data.get("window_end"))
        job = ics_import_submit(
            actor=request.user,
            therapist=therapist,
            data=upload.read(),
            window=window,
            as_busy=data["as_busy"],
            filename=upload.name or "",
        )
        body = IcsImportOutput(job).data
        if job.status == IcsImport.Status.FAILED:
            details = {"line": (job.counts or {}).get("line"), "import": body["url"]}
            return Response(error_body("invalid", job.error, details), status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if job.status == IcsImport.Status.DONE else status.HTTP_202_ACCEPTED
        return Response(body, status=code, headers={"Location": body["url"]})


class IcsImportDetailApi(APIView):
    @extend_schema(
        operation_id="imports_retrieve",
        responses={200: IcsImportOutput, **error_responses(404)},
        description="An import job: status, progress (percent), counts, and the error of a refused file.",
    )
    def get(self, request: Request, pk: int) -> Response:
        job = IcsImport.objects.filter(
            pk=pk, therapist__in=therapist_list_visible(viewer=request.user)
        ).first()
        if job is None:
            raise NotFound(f"Import {pk} not found.")
        if ics_import_reap_stale(import_id=job.pk):  # a job whose worker died is failed as it is read
            job.refresh_from_db()
        return Response(IcsImportOutput(job).data)


class IcsImportRetryApi(APIView):
    @extend_schema(
        operation_id="imports_retry",
        request=None,
        responses={200: IcsImportOutput, 202: IcsImportOutput, **error_responses(400, 403, 404)},
        description=(
            "Retry a failed import from its kept file (a job whose worker died or failed unexpectedly; "
            "kept ICS_IMPORT_RETRY_HOURS). A file refused for its content is not kept: upload it again."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        job = IcsImport.objects.filter(
            pk=pk, therapist__in=therapist_list_visible(viewer=request.user)
        ).first()
        if job is None:
            raise NotFound(f"Import {pk} not found.")
        if not request.user.has_perm("scheduler.add_appointment"):
            raise Forbidden("You may not import calendars.")
        ics_import_reap_stale(import_id=job.pk)
        job = ics_import_retry(actor=request.user, import_id=job.pk)
        body = IcsImportOutput(job).data
        code = status.HTTP_202_ACCEPTED if job.status == IcsImport.Status.QUEUED else status.HTTP_200_OK
        return Response(body, status=code, headers={"Location": body["url"]})
