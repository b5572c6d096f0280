# Staff search of plate reads used every read of a car park (no index for a plate's look-alike key or for a
# booking's reads); a visit's plain plate index served only that search, which now asks for the look-alike key.
# Built CONCURRENTLY on PostgreSQL: a plain CREATE INDEX would hold up every decision's insert while it runs.

from django.db import migrations, models

from apps.core.migration_ops import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("access", "0004_fewer_indexes_on_hot_writes"),
        ("bookings", "0003_fewer_indexes_on_hot_writes"),
        ("carparks", "0002_tariffs"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="plateread",
            index=models.Index(fields=["carpark", "lookalike_key", "captured_at"], name="read_key_captured"),
        ),
        AddIndexConcurrently(
            model_name="plateread",
            index=models.Index(condition=models.Q(booking__isnull=False), fields=["booking"], name="read_booking"),
        ),
        # the unpaired exits' partial index once the full one above is there to take over
        RemoveIndexConcurrently(model_name="plateread", name="read_unpaired_exit_key"),
        RemoveIndexConcurrently(model_name="visit", name="visit_plate"),
    ]
