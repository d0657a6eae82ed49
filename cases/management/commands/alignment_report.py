from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cases.models import ReportFormat
from cases.reports.outputs import report_output
from frameworks.models import Framework


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date: use YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Write the framework alignment report as html (printable), csv, json, pdf or oscal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--framework", required=True, help="Framework key, e.g. nist-csf-2.0.")
        parser.add_argument("--format", default=ReportFormat.HTML, choices=ReportFormat.values)
        parser.add_argument("--since", help="First day of the period (YYYY-MM-DD), cases identified from it.")
        parser.add_argument("--until", help="Last day of the period (YYYY-MM-DD), included.")
        parser.add_argument("--output", help="File to write; standard output when omitted (not for pdf).")

    def handle(self, *args: Any, **options: Any) -> None:
        key, fmt, output = options["framework"], options["format"], options["output"]
        since, until = _date(options["since"], "--since"), _date(options["until"], "--until")
        if since and until and since > until:
            raise CommandError(f"The period starts after it ends: --since {since} > --until {until}.")
        if not Framework.objects.filter(key=key).exists():
            known = ", ".join(Framework.objects.order_by("key").values_list("key", flat=True))
            raise CommandError(
                f"Unknown framework {key!r}. Loaded: {known or 'none (run manage.py load_catalogs)'}."
            )
        if fmt == ReportFormat.PDF and not output:
            raise CommandError("A PDF is binary: give --output FILE.")
        result = report_output(framework_key=key, fmt=fmt, since=since, until=until)
        if output:
            Path(output).write_bytes(result.content)
            self.stdout.write(f"Wrote {len(result.content)} bytes ({fmt}) to {output}")
        else:
            self.stdout.write(result.content.decode("utf-8"), ending="")
