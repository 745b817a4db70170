"""Webhook receivers: one URL per platform; the signature is verified before anything is parsed."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .base import ConnectorAuthError, ConnectorConfigError, ConnectorError
from .models import Connection, WebhookDelivery
from .registry import connector_class
from .services import connection_request_sync

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 256 * 1024


@csrf_exempt
@require_POST
def webhook_receive(request: HttpRequest, platform: str) -> HttpResponse:
    try:
        cls = connector_class(platform)
    except LookupError:
        return JsonResponse(
            {"error": {"code": "not_found", "message": "Unknown platform.", "details": {}}}, status=404
        )
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return JsonResponse(
            {"error": {"code": "too_large", "message": "Body too large.", "details": {}}}, status=413
        )
    # A platform signs with one connection's secret; the first connection that verifies it owns the event.
    candidates = Connection.objects.filter(platform=platform).exclude(status=Connection.Status.PAUSED)
    narrowed = cls.webhook_connection_filter(request)
    if narrowed is not None:
        candidates = candidates.filter(**narrowed)
    for connection in candidates:
        try:
            event_ids = cls(connection).parse_webhook(request)
        except (ConnectorAuthError, ConnectorConfigError):
            continue  # not this connection's signature (or it has no webhook secret): try the next
        except ConnectorError as exc:
            logger.warning("Webhook for %s refused: %s", connection, exc.message)
            return JsonResponse(
                {"error": {"code": "invalid", "message": exc.message, "details": {}}}, status=400
            )
        delivery = cls.webhook_delivery_id(request)
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(
                    connection=connection, delivery_id=delivery, event_ids=event_ids
                )
        except IntegrityError:
            return JsonResponse({"status": "duplicate"})  # a redelivery: acknowledged, nothing to do
        if event_ids:
            connection_request_sync(actor=None, connection=connection, reason="webhook")
        return JsonResponse({"status": "accepted" if event_ids else "ignored"})
    return JsonResponse(
        {"error": {"code": "forbidden", "message": "Signature not valid.", "details": {}}}, status=403
    )
