"""The model-health chart as inline SVG: no script, no external asset, readable in any browser.

Two panels over the same days: rows curated per day (bars), then the live metric, the share of
drifted features and the prediction drift (lines, on 0..1), with a marker at each promotion,
rejection, rollback and triggered retrain.
"""

from __future__ import annotations

from html import escape
from typing import Any

LINES = (  # key, label, colour
    ("live_metric", "live metric", "#1f77b4"),
    ("drift_share", "drifted-feature share", "#d62728"),
    ("prediction_drift", "prediction drift", "#9467bd"),
)
MARKERS = {
    "triggered": "#333333",
    "canary": "#17becf",
    "promoted": "#2ca02c",
    "rejected": "#ff7f0e",
    "rolled_back": "#8c564b",
}


def health_chart(days: list[dict[str, Any]], events: list[dict[str, Any]], width: int = 960) -> str:
    """``days`` and ``events`` as :func:`pipelines.reporting.health.health` returns them."""
    if not days:
        return "<p>No day has been ingested yet.</p>"
    left, right, top = 56, 16, 24
    bars_h, lines_h, gap, legend_h = 90, 200, 28, 40
    height = top + bars_h + gap + lines_h + legend_h
    step = (width - left - right) / len(days)
    x = {d["day"]: left + step * (i + 0.5) for i, d in enumerate(days)}
    most = max((d["rows"] or 0) for d in days) or 1
    lines_top = top + bars_h + gap
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="health-chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="model health over {len(days)} days">',
        f'<text x="{left}" y="{top - 8}" font-size="12">rows curated per day (max {most:,})</text>',
    ]
    for d in days:
        h = bars_h * (d["rows"] or 0) / most
        colour = "#bbb" if not d["quarantined"] else "#e377c2"
        out.append(
            f'<rect x="{x[d["day"]] - step * 0.4:.1f}" y="{top + bars_h - h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{d["day"]}: {d["rows"] or 0} rows'
            f"{', quarantined' if d['quarantined'] else ''}</title></rect>"
        )
    for tick in (0, 0.5, 1):
        y = lines_top + lines_h * (1 - tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" font-size="11" text-anchor="end">{tick:g}</text>')
    for key, label, colour in LINES:
        points = [(x[d["day"]], d[key]) for d in days if d.get(key) is not None]
        if not points:
            continue
        path = " ".join(f"{px:.1f},{lines_top + lines_h * (1 - min(max(v, 0), 1)):.1f}" for px, v in points)
        out.append(f'<polyline class="series-{key}" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (px, v), d in zip(points, [d for d in days if d.get(key) is not None], strict=True):
            y = lines_top + lines_h * (1 - min(max(v, 0), 1))
            out.append(
                f'<circle cx="{px:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{d["day"]}: {label} '
                f"{v:.3f}</title></circle>"
            )
    row_ends: list[float] = []  # where each row of marker labels is taken up to, so that none overlap
    for event in events:
        if event["day"] not in x:
            continue
        px, colour = x[event["day"]], MARKERS.get(event["kind"], "#333")
        what = event["kind"].replace("_", " ") + (f" v{event['version']}" if event.get("version") else "")
        span = 6.5 * len(what)
        flipped = px + 3 + span > width - right  # near the right edge: the label ends at its line instead
        start = px - 3 - span if flipped else px
        nth = next((i for i, end in enumerate(row_ends) if start >= end), len(row_ends))
        if nth == len(row_ends):
            row_ends.append(0.0)
        row_ends[nth] = (px if flipped else px + 3 + span) + 4
        anchor = ' text-anchor="end"' if flipped else ""
        out.append(
            f'<g class="marker marker-{event["kind"]}"><line x1="{px:.1f}" x2="{px:.1f}" y1="{lines_top}" '
            f'y2="{lines_top + lines_h}" stroke="{colour}" stroke-dasharray="4 3"/>'
            f'<text x="{px - 3 if flipped else px + 3:.1f}" y="{lines_top + 12 + 13 * nth}" font-size="11" '
            f'fill="{colour}"{anchor}>'
            f"{escape(what)}</text>"
            f"<title>{event['day']}: {escape(what)}: {escape(event.get('reason') or '')}</title></g>"
        )
    first, last = days[0]["day"], days[-1]["day"]
    axis_y = lines_top + lines_h + 14
    out.append(f'<text x="{left}" y="{axis_y}" font-size="11">{first}</text>')
    out.append(f'<text x="{width - right}" y="{axis_y}" font-size="11" text-anchor="end">{last}</text>')
    legend = [(label, colour) for _, label, colour in LINES] + [(k.replace("_", " "), c) for k, c in MARKERS.items()]
    lx = left
    for label, colour in legend:
        out.append(f'<rect x="{lx}" y="{axis_y + 12}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{axis_y + 21}" font-size="11">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    out.append("</svg>")
    return "\n".join(out)
