"""REST API for connections: status only, never credentials."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import IDEMPOTENCY_HEADER, Pagination, error_responses, idempotent
from lib.errors import Forbidden

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
