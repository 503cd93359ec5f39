from django.apps import AppConfig


class CoocookConfig(AppConfig):
    name = "coocook"
    verbose_name = "CooCook: private chefs and bookings"

    def ready(self) -> None:
        from coocook import services, signals  # noqa: F401  (signals connects receivers)
        from platform_core import payables

        # Payments learn what a booking costs, and whose it is, through the registry.
        payables.register(services.BOOKING_PAYABLE, services.booking_payable)
