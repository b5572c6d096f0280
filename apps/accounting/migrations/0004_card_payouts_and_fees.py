"""Card payouts: the card processing fees account (5200) and the ledger's `card_payout` kind."""

from django.db import migrations, models


def seed(apps, schema_editor):
    from apps.accounting import chart

    chart.ensure(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounting", "0003_vat"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ledgertransaction",
            name="kind",
            field=models.CharField(
                choices=[
                    ("booking", "Booking sold / amended / cancelled"),
                    ("payment", "Payment received"),
                    ("refund", "Refund paid"),
                    ("overstay", "Overstay charge"),
                    ("invoice", "Agent invoice issued"),
                    ("credit_note", "Agent credit note issued"),
                    ("invoice_payment", "Agent invoice paid"),
                    ("allowance", "Sale reduced (partial refund of a live booking)"),
                    ("cancellation_fee", "Cancellation fee retained"),
                    ("adjustment", "Manual correction"),
                    ("card_payout", "Card payout to the bank (fees kept)"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
