"""How a row's fields enter the audit chain: related rows by id, free text by its digest, the rest as is.

The services that record a change describe it with these, so every app puts the same things in the same
form: a foreign key is its id (names and titles can hold anything, ids cannot), and a text field without
choices is `text_digest(...)`, unless the caller names it as safe to keep verbatim (a key id, a preview, a
glob). Defaulting to the digest means a new text field can never leak into the chain unnoticed.
"""

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.db import models

from audit.canonical import text_digest


def audit_fields(
    instance: models.Model, names: Iterable[str], *, verbatim: Collection[str] = ()
) -> dict[str, Any]:
    """The named fields of `instance` as the chain holds them."""
    values: dict[str, Any] = {}
    for name in names:
        field = instance._meta.get_field(name)
        if isinstance(field, models.ForeignKey):  # one-to-one fields included
            values[name] = getattr(instance, field.attname)
            continue
        value = getattr(instance, name)
        if (
            isinstance(field, models.CharField | models.TextField)
            and not field.choices
            and name not in verbatim
        ):
            values[name] = text_digest(value or "")
        else:
            values[name] = value
    return values


def audit_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what differs: (before, after) restricted to the keys whose values changed."""
    changed = [name for name in after if before.get(name) != after[name]]
    return {name: before.get(name) for name in changed}, {name: after[name] for name in changed}
