"""The deliveries-per-hour chart as inline SVG: stacked bars, no JavaScript, a tooltip per bar."""

from __future__ import annotations

import math

from markupsafe import Markup, escape
from teams_proactive.connector.dashboard.data import HourBucket, utc

DELIVERED_COLOUR = "#0B6E5F"  # the brand colour (connector/icon.py)
FAILED_COLOUR = "#C4314B"
WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 34


def nice_ceiling(value: int) -> int:
    """The axis top: a multiple of 4 round numbers (so the 4 grid steps are whole), at least ``value``."""
    if value <= 4:
        return 4
    unit = 10 ** math.floor(math.log10(value / 4))
    return math.ceil(value / (4 * unit)) * 4 * unit


def hourly_chart(hours: list[HourBucket]) -> Markup:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((h.delivered + h.failed for h in hours), default=0))
    slot = plot_w / max(1, len(hours))
    bar_w = max(1.0, slot * 0.7)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="hourly-chart" class="chart" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="hourly-chart-title">',
        '<title id="hourly-chart-title">Deliveries per hour (UTC): delivered and failed</title>',
    ]
    for i in range(5):  # grid lines and y labels at 0, 1/4, ..., top
        value = top * i // 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#D0D3DA" stroke-width="1"'
            ' shape-rendering="crispEdges"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{value}</text>'
        )
    label_every = max(1, len(hours) // 8)
    for i, bucket in enumerate(hours):
        x = LEFT + slot * i + (slot - bar_w) / 2
        delivered_h = plot_h * bucket.delivered / top
        failed_h = plot_h * bucket.failed / top
        base = TOP + plot_h
        tip = escape(
            f"{utc(bucket.start, '%d %b %H:00')} to {utc(bucket.start + 3600, '%H:00')} UTC:"
            f" {bucket.delivered} delivered, {bucket.failed} failed"
        )
        parts.append(
            f'<g class="bar" data-delivered="{bucket.delivered}" data-failed="{bucket.failed}"><title>{tip}</title>'
        )
        if bucket.delivered:
            parts.append(
                f'<rect x="{x:.1f}" y="{base - delivered_h:.1f}" width="{bar_w:.1f}" height="{delivered_h:.1f}"'
                f' fill="{DELIVERED_COLOUR}" shape-rendering="crispEdges"/>'
            )
        if bucket.failed:
            parts.append(
                f'<rect x="{x:.1f}" y="{base - delivered_h - failed_h:.1f}" width="{bar_w:.1f}" height="{failed_h:.1f}"'
                f' fill="{FAILED_COLOUR}" shape-rendering="crispEdges"/>'
            )
        parts.append("</g>")
        if i % label_every == 0:
            parts.append(
                f'<text x="{LEFT + slot * i + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle"'
                f' class="axis">{utc(bucket.start, "%H:00")}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#605E5C"'
        ' stroke-width="1" shape-rendering="crispEdges"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
