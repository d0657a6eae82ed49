import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from frameworks.models import Control, ControlKind, Framework

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
FRAMEWORK_URLS = {
    "nist-csf-2.0": "https://www.nist.gov/cyberframework",
    "nist-ai-rmf-1.0": "https://www.nist.gov/itl/ai-risk-management-framework",
    "owasp-nhi-top10-2025": "https://owasp.org/www-project-non-human-identities-top-10/",
}
_FRAMEWORK_FIELDS = ("id", "name", "version", "publisher", "source", "license")
_CONTROL_FIELDS = ("ref_id", "kind", "title", "statement", "parent")


@dataclass(frozen=True)
class CatalogLoadResult:
    framework: Framework
    created: int
    updated: int


def _require(mapping: Any, fields: tuple[str, ...], where: str) -> None:
    if not isinstance(mapping, dict):
        raise ValidationError(f"{where} must be a JSON object.")
    missing = [field for field in fields if field not in mapping]
    if missing:
        raise ValidationError(f"{where} lacks field(s): {', '.join(missing)}.")


@transaction.atomic
def catalog_load(*, path: Path) -> CatalogLoadResult:
    """Create or update a framework and its controls from a catalog file; existing rows keep their ids."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValidationError(f"{path.name}: not valid JSON (line {error.lineno}: {error.msg}).") from None
    _require(document, ("framework", "controls"), path.name)
    meta = document["framework"]
    _require(meta, _FRAMEWORK_FIELDS, f"{path.name}: framework")
    framework_values = {
        "name": meta["name"],
        "version": meta["version"],
        "publisher": meta["publisher"],
        "source": meta["source"],
        "license": meta["license"],
        "url": FRAMEWORK_URLS.get(meta["id"], ""),
    }
    framework = Framework.objects.filter(key=meta["id"]).first()
    if framework is None:
        framework = Framework.objects.create(key=meta["id"], **framework_values)
    elif any(getattr(framework, name) != value for name, value in framework_values.items()):
        # Only a real change is saved, so reloading the same catalog adds no history rows.
        for name, value in framework_values.items():
            setattr(framework, name, value)
        framework.save()
    existing = {control.ref_id: control for control in Control.objects.filter(framework=framework)}
    created = updated = 0
    kinds = set(ControlKind.values)
    for position, entry in enumerate(document["controls"]):
        where = f"{path.name}: controls[{position}]"
        _require(entry, _CONTROL_FIELDS, where)
        if entry["kind"] not in kinds:
            raise ValidationError(f"{where}: kind {entry['kind']!r} is not one of {sorted(kinds)}.")
        parent = None
        if entry["parent"]:
            parent = existing.get(entry["parent"])
            if parent is None:
                raise ValidationError(
                    f"{where}: parent {entry['parent']!r} must appear before {entry['ref_id']!r}."
                )
        values = {
            "kind": entry["kind"],
            "title": entry["title"],
            "statement": entry["statement"],
            "parent": parent,
            "position": position,
        }
        control = existing.get(entry["ref_id"])
        if control is None:
            control = Control.objects.create(framework=framework, ref_id=entry["ref_id"], **values)
            existing[control.ref_id] = control
            created += 1
        elif any(getattr(control, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(control, name, value)
            control.save()
            updated += 1
    return CatalogLoadResult(framework=framework, created=created, updated=updated)


def catalog_load_all() -> list[CatalogLoadResult]:
    return [catalog_load(path=path) for path in sorted(CATALOG_DIR.glob("*.json"))]
