"""Server-rendered SVG charts: no script, no external network, readable by a screen reader.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and described by a
``<desc>`` that states the numbers (the table and the CSV download say them in full).
Values are escaped; the caller's strings never become markup.

>>> svg = bars("Scans by country", [("DE", 3), ("FR", 1)])
>>> 'role="img"' in svg and "<title" in svg and svg.count("<rect") == 2
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490", "#be123c", "#4d7c0f")
WIDTH = 720


def _head(title: str, desc: str, height: int, ident: str) -> str:
    t, d = escape(title), escape(desc)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" viewBox="0 0 {WIDTH} {height}" '
            f'aria-labelledby="{ident}-t {ident}-d" data-chart="{escape(ident)}">'
            f'<title id="{ident}-t">{t}</title><desc id="{ident}-d">{d}</desc>')


def _fmt(value: float) -> str:
    return f"{value:.1%}" if 0 < value < 1 else f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def bars(title: str, items: Sequence[tuple[str, float]], ident: str = "chart") -> str:
    """Horizontal bars, one per labelled value (at most 30 shown: the CSV has the rest)."""
    items = list(items)[:30]
    row = 26
    height = max(1, len(items)) * row + 20
    top = max((v for _, v in items), default=0) or 1
    desc = "; ".join(f"{label}: {_fmt(v)}" for label, v in items) or "no data in this period"
    out = [_head(title, desc, height, ident)]
    for i, (label, value) in enumerate(items):
        y = 10 + i * row
        w = max(1.0, (WIDTH - 260) * value / top)
        out.append(f'<text x="170" y="{y + 17}" text-anchor="end" font-size="13" fill="#1b1b1b">'
                   f'{escape(label[:24])}</text>'
                   f'<rect x="180" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{PALETTE[0]}"/>'
                   f'<text x="{186 + w:.1f}" y="{y + 17}" font-size="13" fill="#1b1b1b">{_fmt(value)}</text>')
    if not items:
        out.append('<text x="20" y="24" font-size="13" fill="#555">no data in this period</text>')
    out.append("</svg>")
    return "".join(out)


def stacked_days(title: str, rows: Sequence[tuple[str, str, float]], ident: str = "chart") -> str:
    """Vertical bars per day, stacked by series: rows of (day, series, value)."""
    days = sorted({d for d, _, _ in rows})
    series = sorted({s for _, s, _ in rows}, key=lambda s: -sum(v for _, x, v in rows if x == s))[:len(PALETTE)]
    values = {(d, s): v for d, s, v in rows}
    height, base, left = 300, 250, 60
    totals = [sum(values.get((d, s), 0) for s in series) for d in days]
    top = max(totals, default=0) or 1
    step = (WIDTH - left - 10) / max(1, len(days))
    desc = "; ".join(f"{d}: {_fmt(t)}" for d, t in zip(days, totals, strict=True)) or "no data in this period"
    out = [_head(title, desc, height, ident),
           f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#767676"/>',
           f'<text x="{left - 6}" y="{base - 200 + 4}" text-anchor="end" font-size="12" fill="#1b1b1b">{_fmt(top)}</text>',
           f'<text x="{left - 6}" y="{base + 4}" text-anchor="end" font-size="12" fill="#1b1b1b">0</text>']
    for i, day in enumerate(days):
        y = float(base)
        for j, s in enumerate(series):
            h = 200 * values.get((day, s), 0) / top
            if h > 0:
                y -= h
                out.append(f'<rect x="{left + i * step + 1:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" '
                           f'height="{h:.1f}" fill="{PALETTE[j]}"/>')
        if len(days) <= 14 or i % max(1, len(days) // 7) == 0:
            out.append(f'<text x="{left + i * step + step / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                       f'font-size="11" fill="#1b1b1b">{escape(day[5:])}</text>')
    for j, s in enumerate(series):  # legend
        x = left + j * 85
        out.append(f'<rect x="{x}" y="{base + 28}" width="12" height="12" fill="{PALETTE[j]}"/>'
                   f'<text x="{x + 16}" y="{base + 39}" font-size="12" fill="#1b1b1b">{escape(s[:10])}</text>')
    if not days:
        out.append('<text x="70" y="120" font-size="13" fill="#555">no data in this period</text>')
    out.append("</svg>")
    return "".join(out)
