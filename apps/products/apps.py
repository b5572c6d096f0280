from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "apps.products"
    label = "products"

    def ready(self) -> None:
        from apps.products import receivers

        receivers.connect()
