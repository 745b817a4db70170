"""Admin helpers shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest

from audit.services import audit_record
from lib.errors import ApplicationError


class AuditedModelAdmin(admin.ModelAdmin):
    """Reference data edited directly in the admin (offices, services, ...) is still audited, in the
    admin's own transaction. Domain objects with rules (appointments, therapists) use services instead."""

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        event = "changed" if change else "created"
        audit_record(
            actor=request.user,
            action=f"{obj._meta.label_lower}.{event}",
            target=obj,
            details={"fields": sorted(form.changed_data)},
        )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        audit_record(actor=request.user, action=f"{obj._meta.label_lower}.deleted", target=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            audit_record(actor=request.user, action=f"{obj._meta.label_lower}.deleted", target=obj)
        super().delete_queryset(request, queryset)


def run_service_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, objects: Any, call: Any, done: str
) -> None:
    """Apply a service to each selected object; report successes and each refusal by its message."""
    ok = 0
    for obj in objects:
        try:
            call(obj)
            ok += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
    if ok:
        modeladmin.message_user(request, f"{ok} {done}.", messages.SUCCESS)
