from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import Pagination, error_responses
from lib.errors import Forbidden

from .models import AuditLog


class AuditLogOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = [
            "seq",
            "timestamp",
            "actor",
            "actor_label",
            "action",
            "target_type",
            "target_id",
            "details",
            "source_ip",
            "prev_hash",
            "hash",
            "key_id",
        ]


class AuditLogFilter(serializers.Serializer):
    # CharField refuses NUL characters (PostgreSQL text cannot hold them): a clear 400, not a 500.
    action = serializers.CharField(required=False, max_length=200)
    target_type = serializers.CharField(required=False, max_length=100)
    target_id = serializers.CharField(required=False, max_length=64)


class AuditLogListApi(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="audit_list",
        parameters=[
            OpenApiParameter("action", str),
            OpenApiParameter("target_type", str),
            OpenApiParameter("target_id", str),
        ],
        responses={200: AuditLogOutput(many=True), **error_responses(403)},
        description="Admins only. Newest first.",
    )
    def get(self, request: Request) -> Response:
        if not request.user.has_perm("audit.view_auditlog"):
            raise Forbidden("The audit log is for Admins only.")
        filters = AuditLogFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = AuditLog.objects.order_by("-seq")
        for name, value in filters.validated_data.items():
            if value:
                qs = qs.filter(**{name: value})
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AuditLogOutput(page, many=True).data)
