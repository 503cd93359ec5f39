from django.apps import AppConfig


class CoocookConfig(AppConfig):
    name = "coocook"
    verbose_name = "CooCook: private chefs and bookings"

    def ready(self) -> None:
        from coocook import signals  # noqa: F401  (connects receivers)
