"""HTML-free views outside the API: the subscription feed (no login; the secret URL is the credential)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

from .ical import therapist_feed
from .selectors import calendar_feed_token_lookup


@require_safe
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """A therapist's PHI-free appointments as .ics; unknown and revoked tokens answer 404 alike."""
    feed = calendar_feed_token_lookup(token=token)
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
