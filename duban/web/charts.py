"""Charts as inline SVG drawn on the server: no script, no font or library to download.

Bars are sized in percent of the chart's width and text in pixels, so a chart fills a 390 px
phone or a desktop at the same legible text size. Every bar is a link to the tasks behind it.
The SVG is decoration for sighted readers (aria-hidden, its links out of the tab order):
each chart comes with a table of the same numbers and links (see the home templates), which
screen readers, keyboards and printers use.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 38  # px per horizontal bar: a label line and the bar under it
BAR = 12
LABEL_MAX = 16  # characters of a label drawn in the chart (the table holds the full text)
COLUMN_HEIGHT = 140  # px of the tallest column in the month chart
GOOD, FAIR = 0.9, 0.6  # rate thresholds of the bar colours
COLOURS = {"good": "#1a7f37", "fair": "#b35900", "poor": "#b42318", "count": "#8b1a1a"}
TRACK = "#eaeef2"
HIT = 'fill="#fff" fill-opacity="0"'  # the whole row or column is the link, not just the ink


@dataclass(frozen=True, kw_only=True)
class Bar:
    label: str
    value: float | None  # a rate in [0, 1], or a count
    text: str  # the value as printed
    href: str


def _colour(rate: float | None) -> str:
    if rate is None:
        return TRACK
    return COLOURS["good" if rate >= GOOD else "fair" if rate >= FAIR else "poor"]


def _short(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def _svg(height: int, body: str, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" width="100%" height="{height}" aria-hidden="true" '
        f'focusable="false" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="inherit" font-size="13"><title>{escape(title)}</title>{body}</svg>'
    )


def hbars(bars: list[Bar], *, title: str, rates: bool = True) -> Markup:
    """Horizontal bars, one per row, label above its bar: rates (0–1) or counts (scaled to
    the largest)."""
    top = max((b.value or 0 for b in bars), default=0) if not rates else 1.0
    parts = []
    for i, b in enumerate(bars):
        y = i * ROW
        share = (b.value or 0) / top if top else 0
        fill = _colour(b.value) if rates else COLOURS["count"]
        parts.append(
            f'<a href="{escape(b.href)}" tabindex="-1"><title>{escape(b.label)}: '
            f"{escape(b.text)}</title>"
            f'<rect x="0" y="{y}" width="100%" height="{ROW}" {HIT}/>'
            f'<text x="0" y="{y + 14}" fill="#1f2328">{escape(_short(b.label))}</text>'
            f'<text x="100%" y="{y + 14}" text-anchor="end" fill="#1f2328" '
            f'font-weight="600">{escape(b.text)}</text>'
            f'<rect x="0" y="{y + 20}" width="100%" height="{BAR}" fill="{TRACK}"/>'
            f'<rect x="0" y="{y + 20}" width="{100 * share:.1f}%" height="{BAR}" '
            f'fill="{fill}"/></a>'
        )
    return _svg(max(ROW * len(bars), ROW), "".join(parts), title)


def columns(bars: list[Bar], *, title: str) -> Markup:
    """Vertical bars of rates (0–1), one per month, the label under each."""
    n = max(len(bars), 1)
    width = 100 / n
    base = COLUMN_HEIGHT + 20
    parts = [f'<line x1="0" x2="100%" y1="{base}" y2="{base}" stroke="#d0d7de"/>']
    for i, b in enumerate(bars):
        x = i * width
        high = round(COLUMN_HEIGHT * (b.value or 0))
        centre = x + width / 2
        parts.append(
            f'<a href="{escape(b.href)}" tabindex="-1"><title>{escape(b.label)}: '
            f"{escape(b.text)}</title>"
            f'<rect x="{x:.2f}%" y="0" width="{width:.2f}%" height="{base + 22}" {HIT}/>'
            f'<rect x="{x + width * 0.15:.2f}%" y="{base - high}" width="{width * 0.7:.2f}%" '
            f'height="{high}" fill="{_colour(b.value)}"/>'
            f'<text x="{centre:.2f}%" y="{base - high - 4}" text-anchor="middle" '
            f'font-size="11" fill="#1f2328">{escape(b.text)}</text>'
            f'<text x="{centre:.2f}%" y="{base + 16}" text-anchor="middle" font-size="12" '
            f'fill="#1f2328">{escape(b.label)}</text></a>'
        )
    return _svg(base + 22, "".join(parts), title)
