"""Bulk writing for generated history: ids reserved from a table's sequence, rows sent by COPY."""

from django.db import connection


def ids_reserve(model, n: int) -> list[int]:
    """Reserve n ids of the model's sequence (rows written by COPY name their ids, so others can point at them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [model._meta.db_table, n]
        )
        return [row[0] for row in cursor.fetchall()]


def next_id(model, n: int) -> int:
    return ids_reserve(model, n)[0] if n else 0


def copy_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """COPY rows into the model's table: the big tables (reads, visits, the ledger) go in at COPY's speed, which
    bulk_create's per-value Python work cannot match. Columns not named take their database defaults."""
    columns = ", ".join(model._meta.get_field(f).column for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
