"""The monthly report as PDF, in Chinese or English.

WeasyPrint lays out HTML and CSS through Pango and HarfBuzz, so Chinese text is shaped by the
same engine as the desktop and the fonts are embedded (subset) in the PDF: it reads and prints
the same everywhere. It needs no browser and no server, and it reuses the Django templates and
translations the pages use. Charts are drawn here as SVG, which WeasyPrint renders as vectors
(ECharts needs a JavaScript engine, which a PDF library has not).
"""

from __future__ import annotations

import math
from html import escape

from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lianxin.alerts.models import Outcome
from lianxin.ledgers.figures import Scope, figures

# Simplified-Chinese glyphs (the JP face of Noto CJK draws some characters differently).
FONT = "Noto Sans CJK SC, Noto Sans SC, sans-serif"
COLORS = ["#1e8449", "#2e86c1", "#d68910", "#7d3c98", "#c0392b", "#5d6675", "#16a085"]


def _text_width(text: str) -> float:
    # At 10 px: CJK characters are about 10 px wide, Latin ones about 5.5.
    return sum(10 if ord(c) > 0x2E7F else 5.5 for c in text)


def _fit(text: str, room: float) -> str:
    """Shorten an axis label to its slot, with an ellipsis."""
    if _text_width(text) <= room - 4:
        return text
    while text and _text_width(text + "…") > room - 4:
        text = text[:-1]
    return text + "…"


def _bars(labels, series, width=680, height=220, stacked=False) -> str:
    """A vertical bar chart as SVG: series is [(name, color, values)]."""
    n = max(1, len(labels))
    # The legend wraps onto as many rows as it needs; the plot starts below it.
    legend, lx, ly = [], 40, 4
    for name, _color, _values in series:
        w = 24 + _text_width(str(name))
        if lx + w > width - 10 and lx > 40:
            lx, ly = 40, ly + 14
        legend.append((lx, ly))
        lx += w
    left, bottom, top = 40, 36, ly + 24
    plot_h = height - bottom - top
    if stacked:
        peak = max([sum(v) for v in zip(*[s[2] for s in series], strict=True)] or [0])
    else:
        peak = max([max(s[2] or [0]) for s in series] or [0])
    # A ceiling divisible by the four grid steps, so the axis reads in whole numbers.
    peak = max(4, math.ceil(peak / 4) * 4)
    slot = (width - left - 10) / n
    groups = 1 if stacked else len(series)
    bar = max(1.0, slot * 0.8 / groups)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="10" font-family="{FONT}">'
    ]
    for k in range(5):
        y = top + plot_h * k / 4
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>'
        )
        out.append(
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#5d6675">'
            f"{peak * (4 - k) / 4:.0f}</text>"
        )
    for i, label in enumerate(labels):
        x0 = left + slot * i + slot * 0.1
        base = 0.0
        for g, (_name, color, values) in enumerate(series):
            v = values[i] or 0
            h = plot_h * v / peak
            x = x0 if stacked else x0 + g * bar
            y = top + plot_h - h - (plot_h * base / peak if stacked else 0)
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}"/>'
            )
            if stacked:
                base += v
        every = max(1, n // 16)
        if i % every == 0:
            out.append(
                f'<text x="{x0 + slot * 0.4:.1f}" y="{height - bottom + 14}" '
                f'text-anchor="middle" fill="#5d6675">{escape(_fit(str(label), slot))}</text>'
            )
    for (lx, ly), (name, color, _values) in zip(legend, series, strict=True):
        out.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly + 9}">{escape(str(name))}</text>')
    out.append("</svg>")
    return "".join(out)


def charts(f) -> dict[str, str]:
    daily = _bars(
        [f"{d:%d}" for d, _v, _a in f["daily"]],
        [
            (_("visits"), COLORS[0], [v for _d, v, _a in f["daily"]]),
            (_("alerts"), COLORS[4], [a for _d, _v, a in f["daily"]]),
        ],
    )
    kinds = f["alerts_by_kind"]
    outcomes = sorted({o for k in kinds for o in k["outcomes"]})
    labels = dict(Outcome.choices)
    series = [
        (
            labels.get(o, _("no outcome")),
            COLORS[i % len(COLORS)],
            [k["outcomes"].get(o, 0) for k in kinds],
        )
        for i, o in enumerate(outcomes)
    ]
    series.append((_("not resolved"), "#bbbbbb", [k["total"] - k["resolved"] for k in kinds]))
    by_kind = _bars([k["label"] for k in kinds], series, stacked=True)
    r = f["response"]
    steps = ("ack", "call", "arrival")
    response = _bars(
        [_("to acknowledgement"), _("to first call"), _("to arrival")],
        [
            (_("median"), COLORS[1], [r[s]["median"] or 0 for s in steps]),
            (_("90th percentile"), COLORS[2], [r[s]["p90"] or 0 for s in steps]),
        ],
        height=180,
    )
    return {"daily": daily, "kinds": by_kind, "response": response}


def render_html(scope: Scope, lang: str, now=None) -> str:
    with translation.override(lang):
        f = figures(scope, now=now)
        return render_to_string(
            "ledgers/report.html",
            {
                "f": f,
                "scope": scope,
                "charts": charts(f),
                "lang": lang,
                "made": timezone.localtime(),
                "satisfaction": None
                if f["satisfaction_rate"] is None
                else f"{f['satisfaction_rate'] * 100:.1f}%",
            },
        )


def render_pdf(scope: Scope, lang: str, now=None) -> bytes:
    from weasyprint import HTML

    return HTML(string=render_html(scope, lang, now)).write_pdf()
