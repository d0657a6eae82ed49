from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.demo import DEMO_LOGINS, seed_demo


class Command(BaseCommand):
    help = "Seed the demo data set (teams, identities, credentials, cases in every state); idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("Refusing to seed demo users and data with PORTAL_ENV=production.")
        summary = seed_demo()
        self.stdout.write(
            f"Demo data: {summary.users} user(s), {summary.teams} team(s), "
            f"{summary.identities} identit(y/ies), {summary.credentials} credential(s), "
            f"{summary.cases} case(s), {summary.findings} secrets finding(s) created"
            + (f"; {len(summary.skipped_cases)} case(s) already present" if summary.skipped_cases else "")
        )
        self.stdout.write("Demo logins (development only):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.username:<9} / {login.password:<20} {login.role}")
