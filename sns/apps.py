from django.apps import AppConfig


class SnsConfig(AppConfig):
    name = "sns"
    verbose_name = "SNS: scheduled social posts"

    def ready(self) -> None:
        from sns import signals  # noqa: F401  (connects receivers)
