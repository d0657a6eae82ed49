"""Export a case's signed evidence bundle.

    manage.py export_evidence_bundle CASE --user NAME [--output PATH]

CASE is the case's id or reference (CASE-000123). The export is attributed to --user, who needs the
permission to export bundles and must see the case; it is recorded in the audit chain.
"""

import os
import re
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.bundle import evidence_bundle_export
from cases.models import Case

CASE_REFERENCE = re.compile(r"^(?:CASE-)?0*(\d+)$", re.IGNORECASE)


class Command(BaseCommand):
    help = "Export a case's evidence bundle: a signed zip with a standalone verifier, for auditors."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("case", help="The case's id or reference, e.g. 42 or CASE-000042.")
        parser.add_argument("--user", required=True, help="Export as this person (recorded as the exporter).")
        parser.add_argument(
            "--output", help="Where to write the zip (default: ./<case reference>-evidence-bundle.zip)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        reference = CASE_REFERENCE.match(options["case"].strip())
        if reference is None:
            raise CommandError(f"{options['case']!r} is neither a case id nor a reference like CASE-000042.")
        case_id = int(reference.group(1))
        actor = User.objects.filter(username=options["user"]).first()
        if actor is None:
            raise CommandError(f"No user named {options['user']!r}.")
        reference_name = Case(pk=case_id).reference
        path = Path(options["output"] or f"{reference_name}-evidence-bundle.zip")
        # Written beside the target and renamed once complete: a refused or failed export leaves no file.
        partial = path.with_name(f".{path.name}.partial")
        try:
            with partial.open("wb") as output:
                summary = evidence_bundle_export(actor=actor, case_id=case_id, output=output)
            os.replace(partial, path)
        except (PermissionDenied, ValidationError) as error:
            reason = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            raise CommandError(reason) from None
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror or error}") from None
        finally:
            partial.unlink(missing_ok=True)
        chain = "intact" if summary.verification_ok else "NOT intact (see chain_head.json in the bundle)"
        self.stdout.write(
            f"Wrote {path} ({summary.size} bytes), the evidence bundle of {summary.reference}.\n"
            f"SHA-256: {summary.sha256}\n"
            f"Signed with the bundle key {summary.public_key.hex} "
            f"(fingerprint {summary.public_key.fingerprint}).\n"
            f"Audit chain at export: {chain}; the export is chain entry #{summary.audit_seq}.\n"
            f"Check it with: python3 verify_bundle.py {path.name} --public-key {summary.public_key.hex}"
        )
