"""VAT: rate periods (seeded with the UK standard rate, 20% from 2011-01-04), the output and input VAT accounts, the
rate on ledger lines (postings before this carry none: they count as 0%), VAT on agents' invoice lines."""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models



def seed(apps, schema_editor):
    from apps.accounting import chart, vat

    chart.ensure(apps)
    vat.seed(apps)


class Migration(migrations.Migration):

    dependencies = [
        ('accounting', '0002_chart_and_ledger_guards'),
        ('carparks', '0003_brand_site_details'),
    ]

    operations = [
        migrations.AddField(
            model_name='invoice',
            name='commission_vat_total',
            field=models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text='in commission_total', max_digits=14),
        ),
        migrations.AddField(
            model_name='invoice',
            name='price_vat_total',
            field=models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text='in gross_total', max_digits=14),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='commission_vat',
            field=models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text='Input VAT in commission', max_digits=12),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='price_vat',
            field=models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text='Output VAT in price', max_digits=12),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='vat_rate',
            field=models.DecimalField(decimal_places=4, default=Decimal('0.00'), max_digits=5),
        ),
        migrations.AddField(
            model_name='ledgerline',
            name='vat_rate',
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=5, null=True),
        ),
        migrations.AlterField(
            model_name='invoiceline',
            name='commission',
            field=models.DecimalField(decimal_places=2, help_text='Gross (VAT-inclusive)', max_digits=12),
        ),
        migrations.AlterField(
            model_name='invoiceline',
            name='price',
            field=models.DecimalField(decimal_places=2, help_text='Gross (VAT-inclusive)', max_digits=12),
        ),
        migrations.AlterField(
            model_name='ledgertransaction',
            name='kind',
            field=models.CharField(choices=[('booking', 'Booking sold / amended / cancelled'), ('payment', 'Payment received'), ('refund', 'Refund paid'), ('overstay', 'Overstay charge'), ('invoice', 'Agent invoice issued'), ('credit_note', 'Agent credit note issued'), ('invoice_payment', 'Agent invoice paid'), ('allowance', 'Sale reduced (partial refund of a live booking)'), ('cancellation_fee', 'Cancellation fee retained'), ('adjustment', 'Manual correction')], max_length=16),
        ),
        migrations.CreateModel(
            name='VatRate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('valid_from', models.DateField(help_text="First day (the car park's local date) the rate applies to")),
                ('rate', models.DecimalField(decimal_places=4, help_text='0.2000 for 20%', max_digits=5)),
                ('note', models.CharField(blank=True, max_length=100)),
                ('carpark', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='vat_rates', to='carparks.carpark')),
            ],
            options={
                'ordering': ['carpark', '-valid_from'],
                'constraints': [models.UniqueConstraint(fields=('carpark', 'valid_from'), name='vat_rate_one_per_day', nulls_distinct=False), models.CheckConstraint(condition=models.Q(('rate__gte', 0), ('rate__lt', 1)), name='vat_rate_fraction')],
            },
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
