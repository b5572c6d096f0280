"""Every car park has a default product from the moment it is made (so every booking has a product)."""

from django.db.models.signals import post_save

from apps.carparks.models import CarPark


def default_product_for(carpark: CarPark) -> None:
    from apps.products.models import Fare, Product

    if not Product.objects.filter(carpark=carpark).exists():
        product = Product.objects.create(carpark=carpark, code="STD", name="Parking", is_default=True)
        # Refundable until arrival, as every booking was before fares.
        Fare.objects.create(product=product, code="flex", name="Flexible", refundable=True, refund_cutoff_hours=0)


def on_carpark_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if created and not raw:
        default_product_for(instance)


def connect() -> None:
    post_save.connect(on_carpark_saved, sender=CarPark, dispatch_uid="products.default_product")
