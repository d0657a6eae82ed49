from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from cases.diagram import lifecycle_mermaid


class Command(BaseCommand):
    help = "Print (or write) the case lifecycle as a Mermaid state diagram generated from the code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="Write to this file instead of standard output.")

    def handle(self, *args: Any, output: Path | None = None, **options: Any) -> None:
        diagram = lifecycle_mermaid()
        if output is None:
            self.stdout.write(diagram, ending="")
        else:
            output.write_text(diagram, encoding="utf-8")
            self.stdout.write(f"Wrote {output}")
