"""`manage.py create_api_token --user NAME --name NAME [--expires-days N]`: prints a new token, once."""

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from portal.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its SHA-256 is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The username the token acts as.")
        parser.add_argument("--name", required=True, help="What will use it, e.g. 'gitleaks in CI'.")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after N days.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        try:
            # Whoever can run manage.py is trusted with the server; the token is the user's own.
            token, raw = api_token_create(
                actor=user, user_id=user.pk, name=options["name"], expires_at=expires_at
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        expiry = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
        self.stderr.write(f"API token {token.name!r} for {user} (prefix {token.prefix}{expiry}). Shown once:")
        self.stdout.write(raw)
