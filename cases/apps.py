from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases"

    def ready(self) -> None:
        # Receivers import models, which the app registry allows only from ready(): Django's documented
        # place to connect them.
        from cases import receivers  # noqa: F401, PLC0415
