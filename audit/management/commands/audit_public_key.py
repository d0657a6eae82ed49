"""Print the public key that verifies evidence bundles: `manage.py audit_public_key [--json]`.

Give it to auditors through a channel other than the bundles themselves (a bundle's own copy proves
nothing to someone who must assume the bundle could have been replaced).
"""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from audit.signing import bundle_public_key


class Command(BaseCommand):
    help = "Print the Ed25519 public key (hex) and fingerprint that verify this portal's evidence bundles."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the key as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        key = bundle_public_key()
        if options["json"]:
            self.stdout.write(
                json.dumps({"algorithm": "ed25519", "hex": key.hex, "fingerprint": key.fingerprint})
            )
            return
        self.stdout.write(
            f"Evidence bundle signing key (Ed25519, hex): {key.hex}\n"
            f"Fingerprint: {key.fingerprint}\n"
            "Give it to auditors out of band; they run:\n"
            "    python3 verify_bundle.py BUNDLE.zip --public-key <hex>"
        )
