"""Test-suite support for the append-only audit tables (registered in the root conftest.py).

Transactional tests end with Django's `flush`, which the triggers refuse (DELETE on SQLite, TRUNCATE on
PostgreSQL): the flush runs with them lifted, and afterwards the chain is re-opened as migrations leave it
(head + keyed first entry). `triggers_lifted` is also how tests tamper below the triggers, as a DBA could."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

AUDIT_TABLES = ("audit_auditlog", "audit_auditchainhead")


@contextmanager
def triggers_lifted(connection: BaseDatabaseWrapper) -> Iterator[None]:
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            for table in AUDIT_TABLES:
                cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            saved: list[str] = []
        else:  # SQLite cannot disable a trigger: drop and re-create it
            cur.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)",
                AUDIT_TABLES,
            )
            rows = cur.fetchall()
            saved = [sql for _, sql in rows]
            for name, _ in rows:
                cur.execute(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cur:
            if connection.vendor == "postgresql":
                for table in AUDIT_TABLES:
                    cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            for sql in saved:
                cur.execute(sql)


def pytest_configure(config: Any) -> None:
    from django.core.management.commands import flush

    original = flush.Command.handle

    def handle(self: Any, **options: Any) -> None:
        from audit.models import AuditChainHead, AuditLog
        from audit.services import audit_chain_genesis

        connection = connections[options["database"]]
        with triggers_lifted(connection):
            original(self, **options)
        audit_chain_genesis(AuditLog, AuditChainHead)

    flush.Command.handle = handle
