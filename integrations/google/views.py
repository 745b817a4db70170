"""The Google connect flow for a therapist (their own calendar) or an Admin (``?therapist=<id>``).

``connect/`` sends the browser to Google's consent page with a state and a PKCE challenge kept in the
session; ``callback/`` checks the state, exchanges the code, stores the tokens (encrypted) and asks which
calendar to use; ``disconnect/`` (POST) stops the channel and deletes the tokens. Views are thin: the
services do the writes.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from scheduler.models import Therapist

from ..base import ConnectorError
from . import oauth
from .services import (
    google_calendars,
    google_channel_start,
    google_connection_choose_calendar,
    google_connection_connect,
    google_connection_current,
    google_connection_disconnect,
)

SESSION_KEY = "google_oauth"


def _therapist_for(request: HttpRequest, therapist_id: Any = None) -> Therapist:
    """The therapist the user may connect: their own, or (Admins only) the one named. 404 otherwise."""
    wanted = therapist_id or request.GET.get("therapist") or request.POST.get("therapist")
    own = getattr(request.user, "therapist", None)
    if wanted:
        try:
            wanted = int(wanted)
        except (TypeError, ValueError):
            raise Http404 from None
        if is_admin(request.user) or (own is not None and own.pk == wanted):
            return get_object_or_404(Therapist, pk=wanted)
        raise Http404
    if own is None:
        raise Http404("Only a therapist (or an Admin naming one) connects a Google calendar.")
    return own


def _here(therapist: Therapist, request: HttpRequest, name: str) -> str:
    url = reverse(f"google:{name}")
    own = getattr(request.user, "therapist", None)
    return url if own is not None and own.pk == therapist.pk else f"{url}?therapist={therapist.pk}"


@login_required
@require_GET
def status(request: HttpRequest) -> HttpResponse:
    therapist = _therapist_for(request)
    connection = google_connection_current(therapist=therapist)
    return render(
        request,
        "integrations/google_status.html",
        {
            "therapist": therapist,
            "connection": connection,
            "connect_url": _here(therapist, request, "connect"),
            "calendar_url": _here(therapist, request, "calendar"),
        },
    )


@login_required
@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    therapist = _therapist_for(request)
    state = secrets.token_urlsafe(32)
    verifier, challenge = oauth.pkce_pair()
    request.session[SESSION_KEY] = {"state": state, "verifier": verifier, "therapist_id": therapist.pk}
    return redirect(
        oauth.authorization_url(
            redirect_uri=request.build_absolute_uri(reverse("google:callback")),
            state=state,
            challenge=challenge,
            login_hint=therapist.email,
        )
    )


@login_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop(SESSION_KEY, None)
    given = request.GET.get("state", "")
    if not pending or not secrets.compare_digest(str(pending.get("state", "")), given):
        return HttpResponseBadRequest("This Google sign-in is not the one the hub started; start again.")
    therapist = _therapist_for(request, pending["therapist_id"])
    if request.GET.get("error") or not request.GET.get("code"):
        messages.error(request, f"Google did not connect: {request.GET.get('error', 'no code')}.")
        return redirect(_here(therapist, request, "status"))
    try:
        tokens = oauth.exchange_code(
            code=request.GET["code"],
            verifier=pending["verifier"],
            redirect_uri=request.build_absolute_uri(reverse("google:callback")),
        )
        connection = google_connection_connect(actor=request.user, therapist=therapist, tokens=tokens)
        if (connection.credentials or {}).get("calendar_id"):
            google_channel_start(connection=connection)  # a reconnect: same calendar, fresh channel
            messages.success(request, "Google Calendar reconnected.")
            return redirect(_here(therapist, request, "status"))
    except ConnectorError as exc:
        messages.error(request, f"Google did not connect: {exc.message}")
        return redirect(_here(therapist, request, "status"))
    return redirect(_here(therapist, request, "calendar"))


@login_required
@require_http_methods(["GET", "POST"])
def calendar(request: HttpRequest) -> HttpResponse:
    therapist = _therapist_for(request)
    connection = google_connection_current(therapist=therapist)
    if connection is None or not connection.credentials:
        raise Http404("No connected Google account.")
    try:
        if request.method == "POST":
            google_connection_choose_calendar(
                actor=request.user, connection=connection, calendar_id=request.POST.get("calendar_id", "")
            )
            messages.success(request, "Google Calendar connected.")
            return redirect(_here(therapist, request, "status"))
        calendars = google_calendars(connection=connection)
    except ConnectorError as exc:
        messages.error(request, exc.message)
        return redirect(_here(therapist, request, "status"))
    return render(
        request,
        "integrations/google_calendar.html",
        {"therapist": therapist, "calendars": calendars, "action": _here(therapist, request, "calendar")},
    )


@login_required
@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    therapist = _therapist_for(request)
    connection = google_connection_current(therapist=therapist)
    if connection is None:
        raise Http404("No Google connection.")
    google_connection_disconnect(actor=request.user, connection=connection)
    messages.success(request, "Google Calendar disconnected.")
    return redirect(_here(therapist, request, "status"))
