import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import VerificationTrigger
from audit.services import audit_trail_verify


class Command(BaseCommand):
    help = (
        "Walk the audit chain from its first entry to its head, checking every hash, MAC and link. Prints "
        "the first changed, missing, inserted or reordered entry and exits non-zero if there is one; the "
        "result is recorded and shown in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        verification = audit_trail_verify(trigger=VerificationTrigger.COMMAND)
        seconds = (verification.finished_at - verification.started_at).total_seconds()
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": verification.ok,
                        "entries_checked": verification.entries_checked,
                        "last_seq": verification.last_seq,
                        "last_hash": verification.last_hash,
                        "problem": (
                            None
                            if verification.ok
                            else {
                                "kind": verification.problem_kind,
                                "seq": verification.problem_seq,
                                "message": verification.message,
                            }
                        ),
                        "seconds": round(seconds, 3),
                    }
                )
            )
        elif verification.ok:
            self.stdout.write(
                f"Audit trail intact: {verification.entries_checked} entries checked, up to "
                f"#{verification.last_seq} ({verification.last_hash[:16]}…), in {seconds:.2f} s."
            )
        if not verification.ok:
            raise CommandError(
                f"Audit trail NOT intact ({verification.problem_kind}): {verification.message} "
                f"Entries #1 to #{verification.last_seq} are intact."
            )
