from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import StrictCharField, error_body, error_responses

from .services import api_token_issue


class TokenObtainApi(APIView):
    """Exchange a username and password for an API token (failed attempts count towards the lockout)."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    class TokenInput(serializers.Serializer):
        username = StrictCharField(max_length=150)
        password = StrictCharField(max_length=256, trim_whitespace=False)

    @extend_schema(
        operation_id="auth_token",
        request=TokenInput,
        responses={
            200: inline_serializer(
                "Token", fields={"token": serializers.CharField(), "expiry": serializers.DateTimeField()}
            ),
            **error_responses(),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        serializer = self.TokenInput(data=data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request=request._request, **serializer.validated_data)
        if user is None or not user.is_active:
            return Response(
                error_body("invalid_credentials", "Unable to log in with those credentials."),
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, expiry = api_token_issue(actor=user, user=user)
        return Response({"token": token, "expiry": expiry.isoformat() if expiry else None})
