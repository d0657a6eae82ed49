"""The alignment report as an OSCAL 1.2.x Assessment Results document, and its validation.

One result per report; one finding per leaf control (subcategory or risk), targeting the control's
statement: `satisfied` when cases under the control exist in the period, `not-satisfied` when it is a gap.
One observation per control carries the figures as props. UUIDs are version 5, derived from the framework,
the period and the generation time, so the same report always gives the same document.
"""

import json
import re
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import regex
from jsonschema import Draft7Validator, FormatChecker, ValidationError, validators

from cases.alignment import LEAF_KINDS, TRACEABLE_MEANS, AlignmentReport, ControlRow, Figures
from frameworks.models import Framework

OSCAL_VERSION = "1.2.1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "oscal_assessment-results_schema.json"
NAMESPACE = "https://nhi-governance-portal.example/ns/oscal"
_UUID_ROOT = uuid.UUID("6f1d7c2e-9a57-5b0e-8d9c-3c2a6f0b6e11")
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9._-]+")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The schema's `pattern` keyword, with the `regex` module: Python's `re` cannot compile `\\p{L}`."""
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


OscalValidator = validators.extend(Draft7Validator, {"pattern": _pattern})


@cache
def oscal_validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return OscalValidator(schema, format_checker=FormatChecker())


def oscal_errors(document: dict[str, Any]) -> list[str]:
    """Every way the document breaks the official schema, as `path: message` lines; empty when valid."""
    found = sorted(oscal_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"/{'/'.join(str(part) for part in error.absolute_path)}: {error.message}" for error in found]


def token(ref_id: str) -> str:
    """A control ref as an OSCAL token (an NCName): `GOVERN 1.1` becomes `GOVERN_1.1`."""
    value = _NOT_TOKEN.sub("_", ref_id.strip()).strip("_") or "control"
    return value if value[0].isalpha() or value[0] == "_" else f"_{value}"


def _text(value: str) -> str:
    """A non-empty string without surrounding whitespace, as OSCAL's StringDatatype requires."""
    return " ".join(value.split()) or "-"


def _timestamp(report: AlignmentReport) -> str:
    return report.generated_at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _props(figures: Figures, extra: dict[str, Any] | None = None) -> list[dict[str, str]]:
    values = {**(extra or {}), **figures.as_dict()}
    return [
        {"name": name.replace("_", "-"), "ns": NAMESPACE, "value": str(value)}
        for name, value in values.items()
        if value is not None
    ]


def _finding_description(row: ControlRow) -> str:
    figures = row.figures
    if row.is_gap:
        return f"No case in the period falls under {row.ref_id}: a gap."
    return (
        f"{figures.mapped_cases} case(s) under {row.ref_id}; {figures.with_evidence} with evidence, "
        f"{figures.traceable} traceable ({TRACEABLE_MEANS}), {figures.overdue_open} open and overdue."
    )


def oscal_document(report: AlignmentReport, framework: Framework) -> dict[str, Any]:
    period = f"{report.since or 'start'}..{report.until or 'now'}"
    seed = uuid.uuid5(_UUID_ROOT, f"{report.framework_key}|{period}|{report.generated_at.isoformat()}")

    def make_uuid(name: str) -> str:
        return str(uuid.uuid5(seed, name))

    stamp = _timestamp(report)
    leaves = [row for row in report.controls if row.kind in LEAF_KINDS]
    observations = []
    findings = []
    for row in leaves:
        observation_uuid = make_uuid(f"observation:{row.ref_id}")
        observations.append(
            {
                "uuid": observation_uuid,
                "title": _text(f"Case figures for {row.ref_id}"),
                "description": _text(
                    f"Aggregated from the portal's cases mapped to {row.ref_id} in the period {period}."
                ),
                "props": _props(row.figures, {"control-ref": row.ref_id}),
                "methods": ["EXAMINE"],
                "collected": stamp,
            }
        )
        findings.append(
            {
                "uuid": make_uuid(f"finding:{row.ref_id}"),
                "title": _text(f"{row.ref_id} {row.title}"),
                "description": _text(_finding_description(row)),
                "target": {
                    "type": "statement-id",
                    "target-id": token(row.ref_id),
                    "title": _text(row.ref_id),
                    "description": _text(row.statement),
                    "status": {
                        "state": "not-satisfied" if row.is_gap else "satisfied",
                        "reason": "fail" if row.is_gap else "pass",
                    },
                },
                "related-observations": [{"observation-uuid": observation_uuid}],
            }
        )
    metadata: dict[str, Any] = {
        "title": _text(f"Framework alignment: {report.framework_name} {report.framework_version}"),
        "last-modified": stamp,
        "version": stamp,
        "oscal-version": OSCAL_VERSION,
        "props": [{"name": "framework-key", "ns": NAMESPACE, "value": report.framework_key}],
        "remarks": _text(f"Catalog attribution and licence: {report.framework_license}"),
    }
    if framework.url:
        metadata["links"] = [{"href": framework.url, "rel": "reference", "text": _text(framework.name)}]
    result: dict[str, Any] = {
        "uuid": make_uuid("result"),
        "title": _text(f"{report.framework_name} {report.framework_version}, period {period}"),
        "description": _text(
            f"{report.summary.covered_controls} of {report.summary.controls} controls have cases in the "
            f"period; {len(report.gaps)} gap(s). {report.traceability_note}"
        ),
        "start": stamp,
        "end": stamp,
        "props": _props(
            report.summary.figures,
            {
                "controls": report.summary.controls,
                "covered-controls": report.summary.covered_controls,
                "audit-chain-proven-through": report.chain_proven_through,
            },
        ),
        "reviewed-controls": {"control-selections": [{"include-all": {}}]},
    }
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    return {
        "assessment-results": {
            "uuid": make_uuid("assessment-results"),
            "metadata": metadata,
            "import-ap": {
                "href": f"#{report.framework_key}",
                "remarks": _text(
                    "No separate assessment plan: the portal's case-to-control mappings are the plan."
                ),
            },
            "results": [result],
        }
    }
