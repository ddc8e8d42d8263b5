"""The dashboard's broadcast page: what was sent, counts, reads per hour as inline SVG, why deliveries failed,
the update/recall state, a paged per-person table and the CSV report."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from flask import Response, abort, current_app, render_template, request
from markupsafe import Markup, escape
from teams_proactive.bot import errors
from teams_proactive.bot.delivery.engagement import report_row, skipped_row
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.bot.model import Broadcast, DeliveryStatus
from teams_proactive.bot.store.base import Store
from teams_proactive.connector import broadcast_report
from teams_proactive.connector.dashboard import data
from teams_proactive.connector.dashboard.access import Viewer, blp, signed_in
from teams_proactive.connector.dashboard.chart import DELIVERED_COLOUR, nice_ceiling
from teams_proactive.connector.dashboard.preview import preview
from teams_proactive.connector.extension import runtime_of

WIDTH, HEIGHT = 960, 220
PEOPLE_PAGE = 50  # rows of the per-person table; the CSV has them all
REASONS_SCANNED = 100_000  # failed deliveries read to count reasons (a broadcast is at most this big)
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 34


def _report(viewer: Viewer, broadcast_id: str) -> dict[str, Any]:
    runtime = runtime_of(current_app)
    caller = Caller(name="dashboard", tenant_id=viewer.tenant_id, scopes=frozenset({"admin"}))
    try:
        return runtime.call(runtime.broadcasts.report(caller, broadcast_id, failures_limit=50), timeout=60)
    except errors.Rejected:
        abort(404)


def reads_chart(timeline: list[tuple[float, int]]) -> Markup:
    """First reads per hour since the first one, as bars, with the running total in each bar's tooltip."""
    if not timeline:
        return Markup('<p class="muted" id="reads-chart">No read receipt yet.</p>')
    start, end = timeline[0][0], timeline[-1][0]
    by_hour = dict(timeline)
    hours = [start + 3600 * i for i in range(int((end - start) // 3600) + 1)]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max(by_hour.values()))
    slot = plot_w / len(hours)
    bar_w = max(1.0, slot * 0.7)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="reads-chart" class="chart" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="reads-chart-title">',
        '<title id="reads-chart-title">People first known to have read it, per hour (UTC)</title>',
    ]
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#D0D3DA" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{top * i // 4}</text>'
        )
    running = 0
    label_every = max(1, len(hours) // 8)
    for i, hour in enumerate(hours):
        reads = by_hour.get(hour, 0)
        running += reads
        height = plot_h * reads / top
        x = LEFT + slot * i + (slot - bar_w) / 2
        tip = escape(f"{data.utc(hour, '%d %b %H:00')} UTC: {reads} read, {running} so far (at least)")
        parts.append(f'<g class="bar" data-reads="{reads}"><title>{tip}</title>')
        if reads:
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar_w:.1f}" height="{height:.1f}"'
                f' fill="{DELIVERED_COLOUR}"/>'
            )
        parts.append("</g>")
        if i % label_every == 0:
            parts.append(
                f'<text x="{LEFT + slot * i + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle"'
                f' class="axis">{data.utc(hour, "%H:00")}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


async def failure_reasons(store: Store, broadcast: Broadcast) -> list[dict[str, Any]]:
    """Why people did not get it: each failure code and skip reason with its count and one example message."""
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    token: str | None = None
    scanned = 0
    while scanned < REASONS_SCANNED:
        page = await store.outbox.page(broadcast_id=broadcast.id, status=DeliveryStatus.FAILED, limit=1000, token=token)
        for delivery in page.items:
            key = ("failed", (delivery.error or {}).get("code") or "Unknown")
            counts[key] += 1
            examples.setdefault(key, (delivery.error or {}).get("message") or "")
        scanned += len(page.items)
        token = page.next_token
        if not token:
            break
    for skip in broadcast.skipped:
        key = ("skipped", skip.get("code") or "Unknown")
        counts[key] += 1
        examples.setdefault(key, skip.get("message") or "")
    return [
        {"outcome": outcome, "code": code, "count": count, "example": examples[(outcome, code)]}
        for (outcome, code), count in counts.most_common()
    ]


async def people_page(
    store: Store, broadcast: Broadcast, token: str | None, size: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the per-person table: deliveries page by page, then (on the last page) the skipped."""
    page = await store.outbox.page(broadcast_id=broadcast.id, limit=size, token=token)
    rows = [report_row(d) for d in page.items]
    if not page.next_token:
        rows += [skipped_row(skip) for skip in broadcast.skipped[:size]]
    return rows, page.next_token


@blp.get("/broadcasts/<string:broadcast_id>")
@signed_in
def broadcast(viewer: Viewer, broadcast_id: str) -> Any:
    report = _report(viewer, broadcast_id)
    runtime = runtime_of(current_app)
    token = request.args.get("people") or None
    size = min(200, max(1, request.args.get("size", PEOPLE_PAGE, type=int) or PEOPLE_PAGE))
    try:
        people, next_token = runtime.call(people_page(runtime.store, report["broadcast"], token, size), timeout=60)
    except ValueError:  # a token that is not ours: start again at the first page
        people, next_token = runtime.call(people_page(runtime.store, report["broadcast"], None, size), timeout=60)
        token = None
    reasons = runtime.call(failure_reasons(runtime.store, report["broadcast"]), timeout=60)
    return render_template(
        "dashboard/broadcast.html",
        viewer=viewer,
        b=report["broadcast"],
        r=report,
        e=report["engagement"],
        chart=reads_chart(report["engagement"].timeline),
        sent=preview(report["broadcast"].content),
        reasons=reasons,
        people=people,
        people_token=token,
        next_token=next_token,
        size=size,
        utc=data.utc,
    )


@blp.get("/broadcasts/<string:broadcast_id>/report.csv")
@signed_in
def broadcast_csv(viewer: Viewer, broadcast_id: str) -> Response:
    report = _report(viewer, broadcast_id)
    runtime = runtime_of(current_app)
    rows = runtime.call(broadcast_report.collect(runtime.store, report["broadcast"]), timeout=60)
    stamp = data.utc(time.time(), "%Y%m%d-%H%M")
    return Response(
        broadcast_report.csv_lines(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="broadcast-{broadcast_id[:12]}-{stamp}.csv"'},
    )
