from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender: Any, **kwargs: Any) -> None:
    # post_migrate is sent once per app, and each app's permissions are created on its own signal; by the
    # last app's signal every permission exists. Re-syncing after every migrate covers models added later.
    from django.apps import apps

    if sender is not list(apps.get_app_configs())[-1]:
        return
    from .services import roles_sync_permissions

    roles_sync_permissions()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="accounts.sync_roles")
