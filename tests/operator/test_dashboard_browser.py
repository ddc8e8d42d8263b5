"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright (which never
downloads a browser of its own here). Sign in through the form with JavaScript off, then check from a
screenshot that the deliveries chart is drawn: its bars' pixels, in their colours, inside its box."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from teams_proactive.connector.dashboard.chart import DELIVERED_COLOUR, FAILED_COLOUR
from teams_proactive.connector.icon import read_png

from tests.conftest import API_KEY
from tests.operator.seed import seed, seed_finished_card_broadcast
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Flags known to work on these machines: no sandbox as root, and none of Chromium's background
# connections (the network is closed; they would only fail, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--force-color-profile=srgb",  # screenshot pixels are the CSS colours, unconverted
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: ./scripts/test.sh installs Debian's chromium"
)


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_dashboard_renders_the_chart_in_chromium(
    browser, live: LiveApp, connector: FakeConnector, make_user, tmp_path: Path
) -> None:
    seed(live, connector, make_user)
    # JavaScript off: everything must work as plain pages and forms.
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, java_script_enabled=False)
    page = context.new_page()
    page.goto(live.url + "/dashboard/")
    assert page.url.endswith("/dashboard/login?next=/dashboard/")
    page.fill("#api_key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#hourly-chart")
    assert page.url == live.url + "/dashboard/"
    assert page.inner_text("#reachable-total") == "3"
    assert page.title().startswith("Overview")

    chart = page.locator("#hourly-chart")
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("DASHBOARD_SCREENSHOT"):  # to look at it: DASHBOARD_SCREENSHOT=/tmp/dash.png
        shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT"])

    # What the SVG asks for: the area of the bars of each colour, from the rendered DOM.
    expected = {
        colour: sum(
            float(rect.get_attribute("width") or 0) * float(rect.get_attribute("height") or 0)
            for rect in chart.locator(f'rect[fill="{colour}"]').all()
        )
        for colour in (DELIVERED_COLOUR, FAILED_COLOUR)
    }
    assert expected[DELIVERED_COLOUR] > 0 and expected[FAILED_COLOUR] > 0

    # What the screen shows: pixels of exactly those colours inside the chart's box.
    image = read_png(shot.read_bytes())
    counts = dict.fromkeys(expected, 0)
    targets = {_hex(c): c for c in expected}
    x0, y0 = int(box["x"]), int(box["y"])
    for y in range(y0, min(image.height, y0 + int(box["height"]))):
        for x in range(x0, min(image.width, x0 + int(box["width"]))):
            colour = targets.get(image.rgba(x, y)[:3])
            if colour:
                counts[colour] += 1
    for colour, area in expected.items():
        # Edges snap to whole pixels (crispEdges), so allow a pixel of rounding per bar side.
        assert abs(counts[colour] - area) <= 0.15 * area + 40, (colour, counts[colour], area)

    # The tall bar (20 delivered, 4 failed) is taller on screen than the 7 + 2 one.
    heights = [
        (int(g.get_attribute("data-delivered") or 0), g.locator("rect").first.bounding_box()["height"])
        for g in chart.locator("g.bar").all()
        if int(g.get_attribute("data-delivered") or 0) > 0
    ]
    by_count = dict(heights)
    assert by_count[20] > by_count[12] > by_count[7] > 0

    # The CSV link downloads the report with the same session.
    with page.expect_download() as download:
        page.click("text=Download CSV")
    saved = tmp_path / "unreachable.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert ("nestor@contoso.example", "blocked") in {(r["upn"], r["status"]) for r in rows}
    context.close()


def test_broadcasts_from_the_overview_to_a_broadcast_page_in_chromium(
    browser, live: LiveApp, connector: FakeConnector, make_user, tmp_path: Path
) -> None:
    seeded = seed(live, connector, make_user)
    finished = seed_finished_card_broadcast(live)
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, java_script_enabled=False)
    page = context.new_page()
    page.goto(live.url + "/dashboard/login")
    page.fill("#api_key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#broadcasts")

    # The overview lists both, newest first, by their first line, with their counts.
    rows = page.locator("#broadcasts tbody tr")
    assert [rows.nth(i).get_attribute("data-broadcast") for i in range(rows.count())] == [seeded.broadcast_id, finished]
    assert rows.nth(0).locator("a").inner_text() == "All hands"
    survey = rows.nth(1)
    assert survey.locator("a").inner_text() == "Quarterly <b>survey</b> is open"  # shown as text, not markup
    assert "finished" in survey.inner_text()
    assert [c.inner_text() for c in survey.locator("td.num").all()] == ["3", "2", "2", "0", "7"]

    # Its page: what was sent, why some did not get it, and the people, page by page.
    survey.locator("a").click()
    page.wait_for_selector("#sent-preview")
    assert page.url == f"{live.url}/dashboard/broadcasts/{finished}"
    preview = page.locator("#sent-preview .preview")
    assert preview.is_visible()
    assert "Quarterly <b>survey</b> is open" in preview.inner_text() and "Send answer" in preview.inner_text()
    assert preview.locator("b").count() == 0
    box = preview.bounding_box()
    assert box and box["height"] > 40
    reasons = {
        tuple(cell.inner_text() for cell in row.locator("td").all()[:3])
        for row in page.locator("#broadcast-reasons tbody tr").all()
    }
    assert reasons == {
        ("TeamsError", "failed", "1"), ("RecipientUnreachable", "failed", "1"), ("UserNotFound", "skipped", "1"),
        ("OptedOut", "skipped", "1"),
    }  # fmt: skip
    assert page.locator("#report-csv").is_visible()

    page.goto(f"{live.url}/dashboard/broadcasts/{finished}?size=3")
    people: list[str] = []
    while True:
        people += [row.locator("td").first.inner_text() for row in page.locator("#broadcast-people tbody tr").all()]
        if page.locator("#people-next").count() == 0:
            break
        page.click("#people-next")
        page.wait_for_selector("#people-first")
    assert len(people) == 7 and "ghost@contoso.example" in people and "reader-4@contoso.example" in people
    shot = tmp_path / "broadcast.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT"].replace(".png", "-broadcast.png"))
    context.close()
