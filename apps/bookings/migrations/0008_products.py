# Bookings of a product (apps.products): product, fare, promo code, price breakdown and extras. Existing bookings get
# their car park's default product and its first fare (products 0001 made one for every car park).

import django.db.models.deletion
from django.db import migrations, models


def default_products(apps, schema_editor):
    Booking = apps.get_model("bookings", "Booking")
    Product = apps.get_model("products", "Product")
    for product in Product.objects.filter(is_default=True):
        fare = product.fares.order_by("position", "code").first()
        Booking.objects.filter(carpark_id=product.carpark_id, product=None).update(product=product, fare=fare)


class Migration(migrations.Migration):

    dependencies = [
        ('bookings', '0007_flight_status'),
        ('products', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='BookingExtra',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('quantity', models.PositiveSmallIntegerField(default=1)),
                ('price', models.DecimalField(decimal_places=2, max_digits=10)),
            ],
        ),
        migrations.AddField(
            model_name='booking',
            name='fare',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='products.fare'),
        ),
        migrations.AddField(
            model_name='booking',
            name='price_breakdown',
            field=models.JSONField(blank=True, help_text='Per day, rule applied, extras, discount', null=True),
        ),
        migrations.AddField(
            model_name='booking',
            name='product',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='products.product'),
        ),
        migrations.AddField(
            model_name='booking',
            name='promo',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='products.promocode'),
        ),
        migrations.AddField(
            model_name='bookingextra',
            name='booking',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='extras', to='bookings.booking'),
        ),
        migrations.AddField(
            model_name='bookingextra',
            name='extra',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='products.extra'),
        ),
        migrations.AddConstraint(
            model_name='bookingextra',
            constraint=models.UniqueConstraint(fields=('booking', 'extra'), name='booking_extra_unique'),
        ),
        migrations.RunPython(default_products, migrations.RunPython.noop),
    ]
