from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases"

    def ready(self) -> None:
        from cases import receivers  # noqa: F401  (connects to nhi_inventory's announcements)
