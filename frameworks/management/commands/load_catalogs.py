from typing import Any

from django.core.management.base import BaseCommand

from frameworks.services import catalog_load_all


class Command(BaseCommand):
    help = "Load or update the framework catalogs shipped in frameworks/catalogs (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        for result in catalog_load_all():
            self.stdout.write(
                f"{result.framework.key}: {result.created} control(s) created, {result.updated} updated"
            )
