"""Migration operations shared by the apps' migrations."""

from django.contrib.postgres import operations as postgres_operations
from django.db import migrations, models


def unique_field_to_constraint(*, model_name: str, name: str, field: models.Field, constraint: str, like_index: str):
    """Replace CharField `name`'s unique=True (`field`: its definition without it) by a UniqueConstraint named as
    the one PostgreSQL already holds (`constraint`, <table>_<column>_key), so that nothing is rebuilt: in the
    database only the varchar_pattern_ops index Django added beside it for LIKE (`like_index`) is dropped. That
    index was written for every row and read by no query (look-ups are equalities, searches UPPER()ed)."""

    def drop_like(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(like_index)}")

    def create_like(apps, schema_editor):
        table = apps.get_model(*model_name.split("."))._meta.db_table
        schema_editor.execute(
            f"CREATE INDEX {schema_editor.quote_name(like_index)} ON {schema_editor.quote_name(table)} "
            f"({schema_editor.quote_name(name)} varchar_pattern_ops)"
        )

    app_model = model_name.split(".")[1]
    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.AlterField(model_name=app_model, name=name, field=field),
            migrations.AddConstraint(
                model_name=app_model, constraint=models.UniqueConstraint(fields=(name,), name=constraint)
            ),
        ],
        database_operations=[migrations.RunPython(drop_like, create_like)],
    )


class AddIndexConcurrently(postgres_operations.AddIndexConcurrently):
    """AddIndex that does not stop the barriers: `CREATE INDEX CONCURRENTLY`, so the table's inserts (plate reads)
    go on while the index is built. Its migration must be `atomic = False`."""


class RemoveIndexConcurrently(postgres_operations.RemoveIndexConcurrently):
    """RemoveIndex as AddIndexConcurrently adds one: `DROP INDEX CONCURRENTLY`."""


class AddCheckConstraintNotValid(postgres_operations.AddConstraintNotValid):
    """AddConstraint of a check that rows already stored may break: `NOT VALID`, so new and updated rows are checked
    and old ones are not (the migration cannot fail on them)."""
