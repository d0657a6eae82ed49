from typing import Any

from django.core.management.base import BaseCommand

from cases.mapping import mapping_rules_load


class Command(BaseCommand):
    help = (
        "Create the shipped case-to-control mapping rules that are missing (rules edited in the admin stay)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{mapping_rules_load()} mapping rule(s) created")
