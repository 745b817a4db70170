"""HTML pages: the therapist's member calendar and the front desk's scheduling board.

Both are server-rendered shells around the calendar component, which reads and writes through the REST
API (/api/v1/) with the browser's session; these views only decide who may open which page. And the
subscription feed (no login: the secret URL is the credential).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_safe

from accounts.roles import is_admin

from . import selectors
from .ical import therapist_feed
from .models import AppointmentStatus, SourceSystem

LOGIN_URL = reverse_lazy("login")


def _is_staff_viewer(user: object) -> bool:
    """Admin and Front desk hold the calendar permission role-wide; a therapist only on their own row."""
    return bool(getattr(user, "is_active", False) and user.has_perm(selectors.VIEW_CALENDAR))


def _choices() -> dict[str, object]:
    return {
        "source_labels": dict(SourceSystem.choices),
        "status_labels": dict(AppointmentStatus.choices),
    }


@login_required(login_url=LOGIN_URL)
def calendar_member(request: HttpRequest) -> HttpResponse:
    """The signed-in therapist's own calendar. Staff, who see every calendar, go to the board instead."""
    therapist = getattr(request.user, "therapist", None)
    if therapist is None and _is_staff_viewer(request.user):
        return redirect("calendar-board")
    return render(request, "scheduler/member.html", {"therapist": therapist, **_choices()})


@login_required(login_url=LOGIN_URL)
def calendar_board(request: HttpRequest) -> HttpResponse:
    """The scheduling board across therapists (Admin and Front desk)."""
    if not (_is_staff_viewer(request.user) and request.user.has_perm("scheduler.change_appointment")):
        raise PermissionDenied
    office = selectors.office_list().first()
    return render(
        request,
        "scheduler/board.html",
        {
            "is_admin": is_admin(request.user),
            "default_timezone": office.timezone if office else "UTC",
            "statuses": AppointmentStatus.choices,
            "sources": SourceSystem.choices,
            **_choices(),
        },
    )


@require_safe
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """A therapist's PHI-free appointments as .ics; unknown and revoked tokens answer 404 alike."""
    feed = selectors.calendar_feed_token_lookup(token=token)
    if feed is None:
        raise Http404("No such feed.")
    body, etag = therapist_feed(feed.therapist_id)
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response["ETag"] = etag
    # Calendar apps revalidate with If-None-Match; shared caches must not keep a secret URL's content.
    response["Cache-Control"] = "private, no-cache"
    return response
