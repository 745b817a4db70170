from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from knox.models import AuthToken

from .models import User
from .services import api_tokens_revoke


class AuthTokenInline(admin.TabularInline):
    """The user's API tokens: prefix, issued, expiry (the token itself is stored hashed and never shown).
    Deleting one here revokes it, audited."""

    model = AuthToken
    extra = 0
    can_delete = True
    fields = ("prefix", "created", "expiry")
    readonly_fields = fields
    verbose_name = "API token"
    verbose_name_plural = "API tokens (tick Delete and save to revoke)"

    @admin.display(description="Token prefix")
    def prefix(self, obj: AuthToken) -> str:
        return f"{obj.token_key[:8]}…"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tokens are issued by POST /api/v1/auth/token/ or `manage.py issue_api_token`


class HubUserAdmin(UserAdmin):
    inlines = [AuthTokenInline]
    actions = ["revoke_api_tokens"]

    @admin.action(description="Revoke all API tokens of the selected users", permissions=["change"])
    def revoke_api_tokens(self, request: HttpRequest, queryset: Any) -> None:
        revoked = sum(api_tokens_revoke(actor=request.user, user=user, reason="admin") for user in queryset)
        self.message_user(request, f"Revoked {revoked} API token(s).")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is AuthToken:
            for item in formset.deleted_forms:
                token = item.instance
                if token.pk is not None:
                    api_tokens_revoke(actor=request.user, user=token.user, token=token, reason="admin")
            return
        super().save_formset(request, form, formset, change)


admin.site.register(User, HubUserAdmin)
