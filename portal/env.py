"""Strict readers for settings that come from the environment.

A typo in an environment variable must stop start-up with a message that names the variable, never fall
back silently to a default: a portal that quietly runs with the wrong key or database is worse than one
that refuses to start.
"""

import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvReader:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None:
            return None
        return value.strip()

    def is_set(self, name: str) -> bool:
        # Only secret() reads NAME_FILE; counting it here would let text()/items() fall back to defaults.
        return self._raw(name) not in (None, "")

    def text(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value in (None, "") else str(value)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}.")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value in (None, ""):
            return default
        lowered = str(value).lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off."
        )

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self._raw(name)
        if value in (None, ""):
            return default
        try:
            number = int(str(value))
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
        return number

    def items(self, name: str, default: list[str]) -> list[str]:
        value = self._raw(name)
        if value in (None, ""):
            return list(default)
        items = [item.strip() for item in str(value).split(",")]
        if any(item == "" for item in items):
            raise ImproperlyConfigured(
                f"{name}={value!r} has an empty entry; separate values with single commas."
            )
        return items

    def secret(self, name: str) -> str | None:
        """Read NAME, or the file named by NAME_FILE (Docker/Kubernetes secrets); never both."""
        direct = self._raw(name)
        file_name = self._raw(f"{name}_FILE")
        if direct and file_name:
            raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
        if file_name:
            path = Path(file_name)
            try:
                content = path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ImproperlyConfigured(
                    f"{name}_FILE={file_name!r} cannot be read: {error.strerror}."
                ) from None
            if not content:
                raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty.")
            return content
        return direct or None

    def pairs(self, name: str) -> dict[str, str]:
        """A secret list of `id=value` pairs separated by commas (NAME or NAME_FILE); empty when unset."""
        value = self.secret(name)
        if not value:
            return {}
        pairs: dict[str, str] = {}
        for item in value.split(","):
            key, separator, secret_value = item.strip().partition("=")
            if not separator or not key.strip() or not secret_value.strip():
                # The value is a secret: name the position, never echo it.
                raise ImproperlyConfigured(
                    f"{name} entry {len(pairs) + 1} is not of the form id=key (comma-separated pairs)."
                )
            if key.strip() in pairs:
                raise ImproperlyConfigured(f"{name} names the id {key.strip()!r} twice.")
            pairs[key.strip()] = secret_value.strip()
        return pairs
