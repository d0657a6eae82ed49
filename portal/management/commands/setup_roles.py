from typing import Any

from django.core.management.base import BaseCommand

from portal.roles import roles_sync


class Command(BaseCommand):
    help = "Create the role groups (analyst, approver, auditor, NHI owner) and set their permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, count in roles_sync().items():
            self.stdout.write(f"{name}: {count} permission(s)")
