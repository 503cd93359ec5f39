from django.apps import AppConfig


class PlatformCoreConfig(AppConfig):
    name = "platform_core"
    verbose_name = "Accounts, auth and payments"

    def ready(self) -> None:
        from platform_core import signals  # noqa: F401  (connects receivers)
