"""Import a scanner report: `manage.py ingest_findings --format gitleaks --source NAME FILE`.

Prints the import summary as JSON. Malformed or wrong-format input: the error names the line or field,
the exit status is non-zero and nothing is written.
"""

import json
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from findings.models import ReportFormat
from findings.services import findings_import
from portal.roles import AUTOMATION_USERNAME, automation_user


def _messages(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "Import a scanner report (gitleaks, TruffleHog, detect-secrets, SARIF, secretlint, GitHub alerts)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--format", required=True, choices=ReportFormat.values, dest="report_format")
        parser.add_argument("--source", required=True, help="Where the report comes from, e.g. a repository.")
        parser.add_argument(
            "--user",
            default=AUTOMATION_USERNAME,
            help=f"Import as this user (default: the portal's own account, {AUTOMATION_USERNAME}).",
        )
        parser.add_argument("file", help="The report; - reads standard input.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user"] == AUTOMATION_USERNAME:
            actor = automation_user()
        else:
            found = User.objects.filter(username=options["user"]).first()
            if found is None:
                raise CommandError(f"No user named {options['user']!r}.")
            actor = found
        name = options["file"]
        try:
            if name == "-":
                run = findings_import(
                    actor=actor,
                    report_format=options["report_format"],
                    source=options["source"],
                    stream=sys.stdin.buffer,
                    file_name="<stdin>",
                )
            else:
                path = Path(name)
                if not path.is_file():
                    raise CommandError(f"{name}: no such file.")
                with path.open("rb") as stream:
                    run = findings_import(
                        actor=actor,
                        report_format=options["report_format"],
                        source=options["source"],
                        stream=stream,
                        file_name=path.name,
                    )
        except ValidationError as error:
            raise CommandError(_messages(error)) from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        self.stdout.write(json.dumps({"import": run.pk, **run.summary}, indent=2))
