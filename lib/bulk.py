"""Bulk inserts and updates by ``executemany``, without Django's per-value preparation.

``QuerySet.bulk_create`` prepares every value of every row through the field API (``pre_save``,
``get_db_prep_save``, placeholder assembly): at twenty columns that is most of the cost of a sync page.
Here each column gets one adapter, chosen once per call from the field's type and the database backend,
and the rows go to the driver in one ``executemany``. The adapters give the same values Django would
(datetimes through the backend's own ``adapt_datetimefield_value``, UUIDs as the backend stores them,
anything else through the field's ``get_db_prep_save``: encrypted and JSON fields included).

No signals, no ``save()``, no returned primary keys: callers that need the ids read them back by a unique
key. Use it only for plain rows whose model has no save-time logic beyond defaults and ``auto_now``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

_PLAIN = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "IntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}


def _identity(value: Any) -> Any:
    return value


def _sqlite_datetime(value: Any) -> Any:
    """What SQLite's adapt_datetimefield_value stores (naive UTC text), without its checks per value."""
    if value is None or getattr(value, "tzinfo", None) is None:
        return connection.ops.adapt_datetimefield_value(value)  # None, or naive: Django's own answer
    return str(value.astimezone(UTC).replace(tzinfo=None))


def column_adapter(field: models.Field) -> Callable[[Any], Any]:
    """A function turning one Python value of ``field`` into what the driver receives."""
    internal = field.get_internal_type()
    if field.is_relation:
        return _identity  # attname values: the related primary key, already an int (or None)
    if type(field).__module__.startswith("django.") and internal in _PLAIN:
        return _identity  # Django's own plain fields (a custom subclass may prepare values: see below)
    if internal == "DateTimeField" and connection.vendor == "sqlite" and settings.USE_TZ:
        return _sqlite_datetime
    if internal == "DateTimeField":
        return connection.ops.adapt_datetimefield_value  # None and aware datetimes, as Django does
    if internal == "UUIDField" and not connection.features.has_native_uuid_field:
        return lambda value: None if value is None else value.hex
    if internal == "UUIDField":
        return _identity
    return lambda value: field.get_db_prep_save(value, connection)


def _fields(model: type[models.Model], attnames: Sequence[str]) -> list[models.Field]:
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    try:
        return [by_attname[name] for name in attnames]
    except KeyError as exc:
        raise ValueError(f"{model.__name__} has no column {exc.args[0]!r}") from None


def insert_rows(
    model: type[models.Model], rows: Iterable[Mapping[str, Any]], *, attnames: Sequence[str]
) -> int:
    """INSERT one row per mapping (keys: attnames). Columns not given take the field's default (called
    per row when it is callable, e.g. uuid4); ``auto_now``/``auto_now_add`` columns take now; the
    primary key is left to the database. Returns the number of rows."""
    now = timezone.now()
    given = _fields(model, attnames)
    rest = [
        f
        for f in model._meta.concrete_fields
        if f.attname not in set(attnames) and not f.primary_key and not f.generated
    ]
    fields = [*given, *rest]
    adapters = [column_adapter(f) for f in fields]
    fill: list[Callable[[], Any]] = []
    for f in rest:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            fill.append(lambda: now)
        elif f.has_default() and callable(f.default):
            fill.append(f.default)
        else:
            default = f.get_default()
            fill.append(lambda default=default: default)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    params = [
        tuple(
            adapt(value)
            for adapt, value in zip(
                adapters, [*(row[name] for name in attnames), *(make() for make in fill)], strict=True
            )
        )
        for row in rows
    ]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    return len(params)


def update_rows(
    model: type[models.Model], rows: Iterable[Mapping[str, Any]], *, attnames: Sequence[str]
) -> int:
    """UPDATE the given columns of rows by primary key (each mapping has "pk" and the attnames)."""
    fields = _fields(model, attnames)
    adapters = [column_adapter(f) for f in fields]
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
    params = [
        (*(adapt(row[name]) for adapt, name in zip(adapters, attnames, strict=True)), row["pk"])
        for row in rows
    ]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    return len(params)
