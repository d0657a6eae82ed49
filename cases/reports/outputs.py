"""One entry point from (framework, period, format) to the bytes, content type and file name to hand out."""

import json
from dataclasses import dataclass
from datetime import date

from cases.alignment import AlignmentReport, alignment_report
from cases.models import ReportFormat
from cases.reports.oscal import oscal_document, oscal_errors
from cases.reports.pdf import render_pdf
from cases.reports.render import render_csv, render_html, render_json
from frameworks.models import Framework

CONTENT_TYPES = {
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.JSON: "application/json",
    ReportFormat.PDF: "application/pdf",
    ReportFormat.OSCAL: "application/json",
}
EXTENSIONS = {
    ReportFormat.HTML: "html",
    ReportFormat.CSV: "csv",
    ReportFormat.JSON: "json",
    ReportFormat.PDF: "pdf",
    ReportFormat.OSCAL: "oscal.json",
}


class InvalidOscalDocument(ValueError):
    """The OSCAL rendering broke the official schema: a bug here, never something to hand out."""


@dataclass(frozen=True)
class ReportOutput:
    report: AlignmentReport
    fmt: str
    content: bytes
    content_type: str
    filename: str


def report_render(*, report: AlignmentReport, framework: Framework, fmt: str) -> bytes:
    if fmt == ReportFormat.CSV:
        return render_csv(report)
    if fmt == ReportFormat.JSON:
        return render_json(report, framework)
    if fmt == ReportFormat.HTML:
        return render_html(report, framework)
    if fmt == ReportFormat.PDF:
        return render_pdf(report, framework)
    if fmt == ReportFormat.OSCAL:
        document = oscal_document(report, framework)
        errors = oscal_errors(document)
        if errors:
            raise InvalidOscalDocument("; ".join(errors[:5]))
        return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
    raise ValueError(f"Unknown report format {fmt!r}; use one of {', '.join(ReportFormat.values)}.")


def report_output(*, framework_key: str, fmt: str, since: date | None, until: date | None) -> ReportOutput:
    """Generate the report now and render it. Raises Framework.DoesNotExist for an unknown key."""
    if fmt not in ReportFormat.values:
        raise ValueError(f"Unknown report format {fmt!r}; use one of {', '.join(ReportFormat.values)}.")
    framework = Framework.objects.get(key=framework_key)
    report = alignment_report(framework_key=framework_key, since=since, until=until)
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    return ReportOutput(
        report=report,
        fmt=fmt,
        content=report_render(report=report, framework=framework, fmt=fmt),
        content_type=CONTENT_TYPES[ReportFormat(fmt)],
        filename=f"alignment-{framework_key}-{stamp}.{EXTENSIONS[ReportFormat(fmt)]}",
    )
