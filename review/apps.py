from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review campaigns"

    def ready(self) -> None:
        from review import signals  # noqa: F401  (connects receivers)
