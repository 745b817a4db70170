from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth import logout as django_logout
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lib.api import StrictCharField, error_body, error_responses

from .services import api_token_issue, api_tokens_revoke

REVOKED_SCHEMA = inline_serializer("TokensRevoked", fields={"revoked": serializers.IntegerField()})


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

    @extend_schema(
        operation_id="auth_token_revoke",
        responses={200: REVOKED_SCHEMA, **error_responses()},
        description="Revoke the token this request is authenticated with (the same as POST /auth/logout/).",
    )
    def delete(self, request: Request) -> Response:
        return _logout(request)

    def get_authenticators(self) -> list:
        # POST is anonymous (it issues the token); DELETE revokes the caller's own token, so it authenticates.
        if getattr(self, "request", None) is not None and self.request.method == "DELETE":
            return [TokenAuthentication()]
        return super().get_authenticators()

    def get_permissions(self) -> list:
        if getattr(self, "request", None) is not None and self.request.method == "DELETE":
            return [IsAuthenticated()]
        return super().get_permissions()


def _logout(request: Request) -> Response:
    token = request.auth if isinstance(request.auth, AuthToken) else None
    revoked = 0
    if token is not None:
        revoked = api_tokens_revoke(actor=request.user, user=request.user, token=token, reason="logout")
    else:  # a browser session: end it
        django_logout(request._request)
    return Response({"revoked": revoked})


class LogoutApi(APIView):
    """Revoke the API token this request is authenticated with (a session: end the session)."""

    @extend_schema(
        operation_id="auth_logout", request=None, responses={200: REVOKED_SCHEMA, **error_responses()}
    )
    def post(self, request: Request) -> Response:
        return _logout(request)


class LogoutAllApi(APIView):
    """Revoke every API token of the signed-in user (a lost laptop, a leaked script)."""

    @extend_schema(
        operation_id="auth_logout_all", request=None, responses={200: REVOKED_SCHEMA, **error_responses()}
    )
    def post(self, request: Request) -> Response:
        revoked = api_tokens_revoke(actor=request.user, user=request.user, reason="logout_all")
        if not isinstance(request.auth, AuthToken):
            django_logout(request._request)
        return Response({"revoked": revoked})
