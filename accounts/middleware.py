"""Session lifetime and response caching rules for pages and API responses that may carry PHI.

- Idle timeout: a signed-in session unused for SESSION_IDLE_MINUTES (30) is ended on its next request.
- Absolute lifetime: a session ends SESSION_COOKIE_AGE (8 h, at most 12 h) after sign-in, however active:
  Django alone renews the cookie's age whenever the session is saved, so the sign-in time is kept in the
  session and enforced here.
- `Cache-Control: no-store` on every API response and every page served to a signed-in user, so no browser
  or proxy keeps a copy of a patient's details.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

LOGIN_AT = "hub_login_at"
SEEN_AT = "hub_seen_at"
SEEN_WRITE_EVERY = 60  # seconds: the idle clock's resolution, so an active session is not saved per request


class SessionLifetimeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is not None and user is not None and "_auth_user_id" in session and user.is_authenticated:
            now = time.time()
            login_at = session.get(LOGIN_AT)
            seen_at = session.get(SEEN_AT)
            if login_at is None:
                session[LOGIN_AT] = login_at = now
            idle = seen_at is not None and now - seen_at > settings.SESSION_IDLE_MINUTES * 60
            too_old = now - login_at > settings.SESSION_COOKIE_AGE
            if idle or too_old:
                logout(request)  # flushes the session; the request goes on as anonymous (401 / sign-in page)
            elif seen_at is None or now - seen_at > SEEN_WRITE_EVERY:
                session[SEEN_AT] = now
        response = self.get_response(request)
        if request.path.startswith("/api/") or (user is not None and user.is_authenticated):
            patch_cache_control(response, no_store=True, private=True)
        return response
