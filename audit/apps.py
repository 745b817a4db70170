from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from .models import audit_keys

        audit_keys()  # a malformed AUDIT_HMAC_KEYS stops the process at start, not at the first write
