from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "apps.bookings"
    label = "bookings"

    def ready(self) -> None:
        from apps.bookings import history

        history.connect()  # the customer's view of the booking's changes
