"""Google's OAuth 2.0 web-server flow with PKCE (RFC 7636): the consent URL, the code exchange, revocation.

Written against the endpoints directly (a few lines over the hub's HttpClient) rather than with
google-auth-oauthlib's Flow: the verifier has to survive between two requests in the session, and Flow
refuses plain-http redirect URIs unless a process-wide oauthlib environment switch is set, which the demo's
emulator would need. Token refresh itself is google-auth's (see connector.credentials_for).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from ..base import ConnectorAuthError, ConnectorError
from ..http import HttpClient, error_message, json_body
from .connector import SCOPES


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier (43+ chars) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(*, redirect_uri: str, state: str, challenge: str, login_hint: str = "") -> str:
    params = {
        "client_id": settings.GOOGLE_OAUTH_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",  # a refresh token
        "prompt": "consent",  # a refresh token again on a reconnect, not only the first time
        "include_granted_scopes": "true",
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{settings.GOOGLE_OAUTH_AUTH_URI}?{urlencode(params)}"


def exchange_code(*, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
    """Trade the authorization code for tokens; returns what the connection stores."""
    response = HttpClient(platform="google").request(
        "POST",
        settings.GOOGLE_OAUTH_TOKEN_URI,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": settings.GOOGLE_OAUTH_CLIENT_ID,
            "client_secret": settings.GOOGLE_OAUTH_CLIENT_SECRET,
        },
        expected=(400, 401),
    )
    if response.status_code in (400, 401):
        raise ConnectorAuthError(f"Google refused the authorization: {error_message(response)}")
    body = json_body(response, "google")
    if not isinstance(body, dict) or not body.get("access_token"):
        raise ConnectorError("Google's token response has no access token.")
    expiry = datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 0))
    return {
        "access_token": body["access_token"],
        "token_expiry": expiry.isoformat(),
        "refresh_token": body.get("refresh_token", ""),
        "scope": body.get("scope", ""),
    }


def revoke(token: str) -> None:
    """Revoke a token at Google (best effort: a token already revoked or expired is fine)."""
    HttpClient(platform="google").request(
        "POST", settings.GOOGLE_OAUTH_REVOKE_URI, data={"token": token}, expected=(400,)
    )
