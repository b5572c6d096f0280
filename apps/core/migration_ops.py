"""Migration operations shared by the apps' migrations."""

from django.contrib.postgres import operations as postgres_operations
from django.db import migrations, models


def unique_field_to_constraint(*, model_name: str, name: str, field: models.Field, constraint: str, like_index: str):
    """Replace CharField `name`'s unique=True (`field`: its definition without it) by a UniqueConstraint named as
    the one PostgreSQL already holds (`constraint`, <table>_<column>_key), so that nothing is rebuilt: in the
    database only the varchar_pattern_ops index Django added beside it for LIKE (`like_index`) is dropped. That
    index was written for every row and read by no query (look-ups are equalities, searches UPPER()ed)."""

    def drop_like(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(like_index)}")

    def create_like(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
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


class _ConcurrentlyOnPostgreSQL:
    """A CONCURRENTLY index operation on PostgreSQL; elsewhere (SQLite, the embedded default) its `plain` one."""

    plain: type[migrations.AddIndex | migrations.RemoveIndex]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexConcurrently(_ConcurrentlyOnPostgreSQL, postgres_operations.AddIndexConcurrently):
    """AddIndex that does not stop the barriers: on PostgreSQL `CREATE INDEX CONCURRENTLY`, so the table's inserts
    (plate reads) go on while the index is built. Its migration must be `atomic = False`."""

    plain = migrations.AddIndex


class RemoveIndexConcurrently(_ConcurrentlyOnPostgreSQL, postgres_operations.RemoveIndexConcurrently):
    """RemoveIndex as AddIndexConcurrently adds one: `DROP INDEX CONCURRENTLY` on PostgreSQL."""

    plain = migrations.RemoveIndex


class AddCheckConstraintNotValid(postgres_operations.AddConstraintNotValid):
    """AddConstraint of a check that rows already stored may break: on PostgreSQL `NOT VALID` (new and updated rows
    are checked, old ones are not, so the migration cannot fail on them); elsewhere (SQLite) a plain AddConstraint."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddConstraint.database_forwards(self, app_label, schema_editor, from_state, to_state)
