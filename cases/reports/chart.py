"""A server-side SVG bar chart of coverage per category (or cases per risk when there are no categories).

No JavaScript: the SVG is built here, every label escaped, and embedded as is in the admin and printable
pages.
"""

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from cases.alignment import AlignmentReport
from frameworks.models import ControlKind

BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 260
BAR_WIDTH = 360
CAPTION_WIDTH = 150


@dataclass(frozen=True)
class Bar:
    label: str
    share: float
    caption: str


def chart_bars(report: AlignmentReport) -> tuple[str, list[Bar]]:
    """The chart's title and bars: control coverage per category, else cases per risk."""
    categories = [row for row in report.groups if row.kind == ControlKind.CATEGORY]
    if categories:
        return "Controls with cases, per category", [
            Bar(
                label=f"{row.ref_id} {row.title}".strip(),
                share=row.control_coverage or 0.0,
                caption=f"{row.covered_controls}/{row.controls} controls",
            )
            for row in categories
        ]
    leaves = [row for row in report.controls if row.kind == ControlKind.RISK]
    most = max((row.figures.mapped_cases for row in leaves), default=0)
    return "Cases per risk", [
        Bar(
            label=f"{row.ref_id} {row.title}".strip(),
            share=row.figures.mapped_cases / most if most else 0.0,
            caption=f"{row.figures.mapped_cases} case(s)",
        )
        for row in leaves
    ]


def _shorten(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chart_svg(report: AlignmentReport) -> SafeString:
    title, bars = chart_bars(report)
    width = LABEL_WIDTH + BAR_WIDTH + CAPTION_WIDTH
    height = 28 + len(bars) * (BAR_HEIGHT + GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for index, bar in enumerate(bars):
        top = 24 + index * (BAR_HEIGHT + GAP)
        filled = round(BAR_WIDTH * max(0.0, min(bar.share, 1.0)), 1)
        colour = "#15803d" if bar.share >= 0.75 else "#d97706" if bar.share >= 0.25 else "#b91c1c"
        parts += [
            f'<g class="bar"><title>{escape(bar.label)}: {escape(bar.caption)}</title>',
            f'<text x="0" y="{top + 13}">{escape(_shorten(bar.label))}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{top}" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" fill="#e5e7eb"/>',
            f'<rect x="{LABEL_WIDTH}" y="{top}" width="{filled}" height="{BAR_HEIGHT}" fill="{colour}"/>',
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{top + 13}">{escape(bar.caption)}</text></g>',
        ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text is escaped above
