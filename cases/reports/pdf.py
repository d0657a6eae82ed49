"""The alignment report as a PDF (reportlab): summary, coverage chart, groups, controls, gaps, attribution."""

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cases.alignment import AlignmentReport
from cases.reports.chart import chart_bars
from cases.reports.render import hours, percent
from frameworks.models import Framework

_STYLES = getSampleStyleSheet()
_TABLE_STYLE = TableStyle(
    [
        ("FONTSIZE", (0, 0), (-1, -1), 7),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e5e7eb")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("REPEATROWS", (0, 0), (-1, 0)),
    ]
)


def _para(text: str, style: str = "BodyText") -> Paragraph:
    return Paragraph(escape(text), _STYLES[style])


def _bar(x: float, y: float, width: float, colour: str) -> Rect:
    bar = Rect(x, y, width, 9)
    bar.fillColor = colors.HexColor(colour)
    bar.strokeWidth = 0
    return bar


def _chart(report: AlignmentReport, width: float) -> Drawing:
    title, bars = chart_bars(report)
    label_width, caption_width, row = 70 * mm, 35 * mm, 12
    bar_width = width - label_width - caption_width
    drawing = Drawing(width, 16 + row * len(bars))
    drawing.add(String(0, drawing.height - 10, title, fontName="Helvetica-Bold", fontSize=9))
    for index, bar in enumerate(bars):
        y = drawing.height - 26 - index * row
        share = max(0.0, min(bar.share, 1.0))
        fill = "#15803d" if share >= 0.75 else "#d97706" if share >= 0.25 else "#b91c1c"
        label = bar.label if len(bar.label) <= 45 else bar.label[:44] + "…"
        drawing.add(String(0, y + 2, label, fontSize=7))
        drawing.add(_bar(label_width, y, bar_width, "#e5e7eb"))
        drawing.add(_bar(label_width, y, bar_width * share, fill))
        drawing.add(String(label_width + bar_width + 4, y + 2, bar.caption, fontSize=7))
    return drawing


def render_pdf(report: AlignmentReport, framework: Framework) -> bytes:
    buffer = io.BytesIO()
    page = landscape(A4)
    document = SimpleDocTemplate(
        buffer,
        pagesize=page,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Framework alignment: {report.framework_name} {report.framework_version}",
        author="NHI Governance Portal",
    )
    period = f"{report.since or 'start'} to {report.until or 'now'}"
    summary = report.summary
    story: list[Flowable] = [
        _para(f"Framework alignment: {report.framework_name} {report.framework_version}", "Title"),
        _para(f"Period: {period}. Generated {report.generated_at:%Y-%m-%d %H:%M %Z}."),
        _para(
            f"{summary.covered_controls} of {summary.controls} controls have cases "
            f"({percent(summary.control_coverage)}); {summary.figures.mapped_cases} case(s); evidence "
            f"{percent(summary.figures.evidence_coverage)}, "
            f"traceability {percent(summary.figures.traceability)}, "
            f"four-eyes {percent(summary.figures.four_eyes_coverage)}, median to verified "
            f"{hours(summary.figures.median_hours_to_verified)}, overdue {summary.figures.overdue_open}."
        ),
        _para(report.traceability_note),
        Spacer(1, 4 * mm),
        _chart(report, page[0] - 24 * mm),
        Spacer(1, 4 * mm),
    ]
    if report.groups:
        story.append(_para("Functions and categories", "Heading2"))
        rows: list[list[Any]] = [
            ["Ref", "Title", "Controls with cases", "Cases", "Evidence", "Traceability", "Four-eyes"]
        ]
        rows += [
            [
                group.ref_id,
                _para(group.title),
                f"{group.covered_controls}/{group.controls}",
                str(group.figures.mapped_cases),
                percent(group.figures.evidence_coverage),
                percent(group.figures.traceability),
                percent(group.figures.four_eyes_coverage),
            ]
            for group in report.groups
        ]
        story.append(Table(rows, colWidths=[28 * mm, 110 * mm, *[25 * mm] * 5], style=_TABLE_STYLE))
    story.append(_para("Controls", "Heading2"))
    rows = [
        ["Ref", "Statement", "Cases", "Evidence", "Traceability", "Four-eyes", "Median", "Overdue", "Gap"]
    ]
    rows += [
        [
            control.ref_id,
            _para(f"{control.title}: {control.statement}" if control.title else control.statement),
            str(control.figures.mapped_cases),
            percent(control.figures.evidence_coverage),
            percent(control.figures.traceability),
            percent(control.figures.four_eyes_coverage),
            hours(control.figures.median_hours_to_verified),
            str(control.figures.overdue_open),
            "gap" if control.is_gap else "",
        ]
        for control in report.controls
    ]
    story.append(Table(rows, colWidths=[25 * mm, 130 * mm, *[17 * mm] * 7], style=_TABLE_STYLE, repeatRows=1))
    story.append(_para("Gaps", "Heading2"))
    story.append(_para(", ".join(row.ref_id for row in report.gaps) or "None: every control has cases."))
    story.append(_para("Attribution and licence", "Heading2"))
    story.append(_para(f"{framework.publisher}. {framework.source}"))
    story.append(_para(framework.license))
    if framework.url:
        story.append(_para(framework.url))
    document.build(story)
    return buffer.getvalue()
