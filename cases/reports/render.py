"""The alignment report as CSV, JSON and a printable HTML page; the display rows the admin page shares."""

import csv
import io
import json
from typing import Any

from django.template.loader import render_to_string

from cases.alignment import AlignmentReport, ControlRow, Figures
from cases.models import CaseState
from cases.reports.chart import chart_svg
from frameworks.models import Framework

STATES = tuple(CaseState)
CONTROL_COLUMNS = (
    "ref_id",
    "kind",
    "title",
    "category",
    "function",
    "mapped_cases",
    *(f"state_{state.value}" for state in STATES),
    "with_evidence",
    "evidence_coverage",
    "traceable",
    "traceability",
    "severe_closures",
    "severe_closures_approved",
    "four_eyes_coverage",
    "overdue_open",
    "median_hours_to_verified",
    "is_gap",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


def hours(value: float | None) -> str:
    return "–" if value is None else f"{value:g} h"


def framework_meta(framework: Framework) -> dict[str, str]:
    return {
        "key": framework.key,
        "name": framework.name,
        "version": framework.version,
        "publisher": framework.publisher,
        "source": framework.source,
        "license": framework.license,
        "url": framework.url,
    }


def _control_record(row: ControlRow) -> dict[str, Any]:
    return {
        "ref_id": row.ref_id,
        "kind": row.kind,
        "title": row.title,
        "category": row.category or "",
        "function": row.function or "",
        **{f"state_{state.value}": row.by_state.get(state.value, 0) for state in STATES},
        **{key: ("" if value is None else value) for key, value in row.figures.as_dict().items()},
        "is_gap": row.is_gap,
    }


def _cell(value: Any) -> Any:
    """Keep spreadsheet programs from reading catalog text as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def render_csv(report: AlignmentReport) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CONTROL_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in report.controls:
        writer.writerow({key: _cell(value) for key, value in _control_record(row).items()})
    return buffer.getvalue().encode("utf-8")


def report_data(report: AlignmentReport, framework: Framework) -> dict[str, Any]:
    data = report.as_dict()
    data["framework"] = {**data["framework"], **framework_meta(framework)}
    statements = {row.ref_id: row.statement for row in report.controls}
    for control in data["controls"]:
        control["statement"] = statements[control["ref_id"]]
    return data


def render_json(report: AlignmentReport, framework: Framework) -> bytes:
    return json.dumps(report_data(report, framework), indent=2, ensure_ascii=False).encode("utf-8")


def _figure_cells(figures: Figures) -> dict[str, str]:
    return {
        "evidence": percent(figures.evidence_coverage),
        "traceability": percent(figures.traceability),
        "four_eyes": percent(figures.four_eyes_coverage),
        "median": hours(figures.median_hours_to_verified),
    }


def report_context(report: AlignmentReport, framework: Framework) -> dict[str, Any]:
    """What the admin page and the printable page show, formatted once."""
    return {
        "report": report,
        "framework": framework,
        "chart": chart_svg(report),
        "states": [state.label for state in STATES],
        "summary": {
            "row": report.summary,
            "coverage": percent(report.summary.control_coverage),
            **_figure_cells(report.summary.figures),
        },
        "groups": [
            {"row": row, "coverage": percent(row.control_coverage), **_figure_cells(row.figures)}
            for row in report.groups
        ],
        "controls": [
            {
                "row": row,
                "by_state": [row.by_state.get(state.value, 0) for state in STATES],
                **_figure_cells(row.figures),
            }
            for row in report.controls
        ],
        "gaps": report.gaps,
    }


def render_html(report: AlignmentReport, framework: Framework) -> bytes:
    """The printable page: standalone, no scripts, print styles inline."""
    return render_to_string("cases/reports/printable.html", report_context(report, framework)).encode("utf-8")
