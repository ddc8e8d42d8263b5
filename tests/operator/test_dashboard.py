"""The dashboard over real HTTP: sign-in with an admin key, what it shows, the CSV export, and who
may see what."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
import requests
from teams_proactive.connector.cli import main

from tests.conftest import API_KEY
from tests.operator.seed import CONTOSO, FABRIKAM, seed, seed_finished_card_broadcast
from tests.support.dashboard import post_login
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def new_key(capsys: pytest.CaptureFixture[str], name: str, scopes: str, *extra: str) -> str:
    assert main(["keys", "create", "--name", name, "--scopes", scopes, *extra]) == 0
    return capsys.readouterr().out.strip()


def sign_in(live: LiveApp, key: str) -> requests.Session:
    session = requests.Session()
    response = post_login(session, live.url, {"api_key": key}, allow_redirects=False)
    assert response.status_code == 302, response.text
    return session


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert match, element_id
    return html.unescape(match.group(1)).strip()


def test_sign_in_with_an_admin_key_and_a_session_cookie(
    cli_env: dict[str, str], live: LiveApp, capsys: pytest.CaptureFixture[str]
) -> None:
    http = requests.Session()
    first = http.get(live.url + "/dashboard/", allow_redirects=False)
    assert first.status_code == 302 and first.headers["Location"].endswith("/dashboard/login?next=/dashboard/")
    login = http.get(live.url + first.headers["Location"])
    assert login.status_code == 200 and 'name="api_key"' in login.text
    assert "default-src 'none'" in login.headers["Content-Security-Policy"]
    assert "<script" not in login.text

    wrong = post_login(http, live.url, {"api_key": "tpk_nope_nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    sender = new_key(capsys, "flows", "send")
    refused = post_login(http, live.url, {"api_key": sender})
    assert refused.status_code == 403 and "admin scope" in html.unescape(refused.text)

    admin = new_key(capsys, "ops", "admin")
    ok = post_login(http, live.url, {"api_key": admin, "next": "/dashboard/unreachable"}, allow_redirects=False)
    assert ok.status_code == 302 and ok.headers["Location"] == "/dashboard/unreachable"
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1; see the https test below
    assert admin not in cookie
    page = http.get(live.url + "/dashboard/")
    assert page.status_code == 200 and "Signed in with key <strong>ops</strong>" in page.text
    assert page.headers["Cache-Control"] == "no-store"

    # Revoking the key ends the session at the next request.
    assert main(["keys", "revoke", "ops"]) == 0
    after = http.get(live.url + "/dashboard/", allow_redirects=False)
    assert after.status_code == 302 and "/dashboard/login" in after.headers["Location"]

    # The bootstrap key works too; signing out ends the session.
    http = sign_in(live, API_KEY)
    assert http.get(live.url + "/dashboard/").status_code == 200
    http.post(live.url + "/dashboard/logout")
    assert http.get(live.url + "/dashboard/", allow_redirects=False).status_code == 302


def test_sign_in_never_redirects_off_site_and_slows_down_guessing(live: LiveApp) -> None:
    http = requests.Session()
    for target in ("https://evil.example/", "//evil.example/dashboard", "/dashboard\\..\\x"):
        response = post_login(http, live.url, {"api_key": API_KEY, "next": target}, allow_redirects=False)
        assert response.headers["Location"] == "/dashboard/"
    guesser = requests.Session()
    codes = [post_login(guesser, live.url, {"api_key": f"guess-{i}"}).status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429


def test_the_cookie_is_secure_behind_https(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp(app_env | {"PUBLIC_BASE_URL": "https://notify.contoso.example"}) as live:
        form = live.http.get(live.url + "/dashboard/login")
        assert "Secure" in form.headers["Set-Cookie"]  # the form's token too
        # This test talks plain http to 127.0.0.1, where a client holds a Secure cookie back: sent by hand,
        # as a browser on https would.
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        response = requests.post(
            live.url + "/dashboard/login",
            data={"api_key": API_KEY, "csrf_token": token.group(1)},
            cookies={"teams_proactive_dashboard": form.cookies["teams_proactive_dashboard"]},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_overview_shows_people_deliveries_reasons_and_broadcasts(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    seeded = seed(live, connector, make_user)
    page = sign_in(live, API_KEY).get(live.url + "/dashboard/").text

    assert text_of(page, "reachable-total") == "3"  # adele, megan, patti
    assert text_of(page, "unreachable-total") == "3"  # nestor blocked, lynne uninstalled, diego opted out
    assert text_of(page, "delivered-total") == str(12 + 20 + 7 + 4)
    assert text_of(page, "failed-total") == str(4 + 2 + 1 + 1)
    tenants = page[page.index('id="tenants"') :]
    contoso_row = re.search(rf"<code>{CONTOSO}</code></td>(.*?)</tr>", tenants, re.S).group(1)  # type: ignore[union-attr]
    assert re.findall(r'class="num">(\d+)<', contoso_row) == ["2", "3", "1", "1", "0", "0", "1"]
    assert f"<code>{FABRIKAM}</code>" in tenants

    reasons = page[page.index('id="failure-reasons"') :]
    assert re.search(r"<code>TeamsError</code></td><td class=\"num\">2<", reasons)
    assert "<code>RecipientUnreachable</code>" in reasons

    broadcasts = page[page.index('id="broadcasts"') :]
    assert seeded.broadcast_id[:12] in broadcasts
    assert '<progress max="100" value="50.0">' in broadcasts

    # Per-hour bars: the seeded hours carry their counts (tooltips and data attributes, no JavaScript).
    bars = re.findall(r'<g class="bar" data-delivered="(\d+)" data-failed="(\d+)">', page)
    assert len(bars) == 24
    assert ("12", "0") in bars and ("20", "4") in bars and ("7", "2") in bars
    # Names from Teams profiles are escaped, never markup.
    assert "=HYPERLINK(&#34;http://evil.example&#34;)" in page or "=HYPERLINK(&quot;" in page

    wider = sign_in(live, API_KEY).get(live.url + "/dashboard/?hours=48").text
    assert len(re.findall(r'<g class="bar"', wider)) == 48


def test_unreachable_report_and_csv_export(live: LiveApp, connector: FakeConnector, make_user) -> None:
    seed(live, connector, make_user)
    http = sign_in(live, API_KEY)
    page = http.get(live.url + "/dashboard/unreachable").text
    for upn in ("nestor@contoso.example", "lynne@contoso.example", "diego@contoso.example"):
        assert upn in page
    assert "adele@contoso.example" not in page

    response = http.get(live.url + "/dashboard/unreachable.csv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="unreachable-')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["upn"], r["status"]) for r in rows} == {
        ("nestor@contoso.example", "blocked"),
        ("lynne@contoso.example", "uninstalled"),
        ("diego@contoso.example", "optedOut"),
    }
    nestor = next(r for r in rows if r["upn"] == "nestor@contoso.example")
    assert nestor["name"].startswith("'=HYPERLINK")  # a spreadsheet shows it as text, never runs it
    assert nestor["lastError"] and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", nestor["lastSeen"])

    # Scripts use the API key header; a status filter narrows the export.
    only_blocked = requests.get(
        live.url + "/dashboard/unreachable.csv?status=blocked", headers={"X-API-Key": API_KEY}
    ).text
    assert [r["upn"] for r in csv.DictReader(io.StringIO(only_blocked))] == ["nestor@contoso.example"]
    assert requests.get(live.url + "/dashboard/unreachable.csv", headers={"X-API-Key": "wrong"}).status_code == 401


def test_a_tenant_admin_sees_only_that_tenant(
    cli_env: dict[str, str], live: LiveApp, connector: FakeConnector, make_user, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(live, connector, make_user)
    fabrikam_admin = new_key(capsys, "fabrikam-ops", "admin", "--tenant", FABRIKAM)
    page = sign_in(live, fabrikam_admin).get(live.url + "/dashboard/").text
    assert f"tenant {FABRIKAM}" in page
    assert text_of(page, "reachable-total") == "1" and text_of(page, "unreachable-total") == "0"
    assert text_of(page, "delivered-total") == "0"
    assert CONTOSO not in page and "No broadcast yet." in page
    export = requests.get(live.url + "/dashboard/unreachable.csv", headers={"X-API-Key": fabrikam_admin}).text
    assert export.strip().splitlines() == ["tenantId,name,upn,email,aadObjectId,status,lastSeen,lastError"]


def test_overview_lists_recent_broadcasts_running_and_finished(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    seeded = seed(live, connector, make_user)
    finished = seed_finished_card_broadcast(live)
    page = sign_in(live, API_KEY).get(live.url + "/dashboard/").text
    assert text_of(page, "running-total") == "1"
    table = page[page.index('id="broadcasts"') : page.index("</table>", page.index('id="broadcasts"'))]
    rows = re.findall(r'<tr data-broadcast="([0-9a-f]+)">(.*?)</tr>', table, re.S)
    assert [row_id for row_id, _ in rows] == [seeded.broadcast_id, finished]  # newest first
    running, done = (cells for _, cells in rows)
    assert "All hands</a>" in running and "running" in running
    # A card's first text, escaped; finished, with its counts and a link to its page.
    assert "Quarterly &lt;b&gt;survey&lt;/b&gt; is open</a>" in done and "finished" in done
    assert re.findall(r'class="num">(\d+)<', done) == ["3", "2", "2", "0", "7"]
    assert f'href="/dashboard/broadcasts/{finished}"' in done


def test_broadcast_page_shows_what_was_sent_why_it_failed_and_who(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    seed(live, connector, make_user)
    finished = seed_finished_card_broadcast(live)
    session = sign_in(live, API_KEY)
    page = session.get(live.url + f"/dashboard/broadcasts/{finished}?size=2").text
    preview = page[page.index('id="sent-preview"') : page.index("</section>", page.index('id="sent-preview"'))]
    assert "An Adaptive Card" in preview and "Quarterly &lt;b&gt;survey&lt;/b&gt; is open" in preview
    assert "[Your comment]" in preview and ">Send answer<" in preview and "<b>survey" not in preview
    reasons = page[page.index('id="broadcast-reasons"') :]
    found = re.findall(r"<code>(\w+)</code></td><td>(\w+)</td><td class=\"num\">(\d+)<", reasons)
    assert sorted(found) == sorted(
        [("TeamsError", "failed", "1"), ("RecipientUnreachable", "failed", "1"), ("UserNotFound", "skipped", "1"),
         ("OptedOut", "skipped", "1")]
    )  # fmt: skip
    # The per-person table, two a page, followed link by link: every delivery, then the skipped.
    seen: list[tuple[str, str]] = []
    url = live.url + f"/dashboard/broadcasts/{finished}?size=2"
    for _ in range(10):
        page = session.get(url).text
        table = page[page.index('id="broadcast-people"') : page.index("</table>", page.index('id="broadcast-people"'))]
        seen += re.findall(r"<tr><td>([^<]+)</td><td>(\w+)</td>", table)
        more = re.search(r'id="people-next" href="([^"]+)"', page)
        if not more:
            break
        url = live.url + html.unescape(more.group(1))
    assert len(seen) == 7 and len(set(seen)) == 7
    assert ("reader-0@contoso.example", "delivered") in seen and ("ghost@contoso.example", "skipped") in seen
    assert ("reader-3@contoso.example", "failed") in seen


def test_a_sign_in_form_posted_from_another_site_is_refused(live: LiveApp) -> None:
    # Login CSRF: another site's page posts the form with the attacker's own key, so that the victim's
    # browser is signed in as the attacker. Refused whether the browser says where it comes from or not.
    def signed_in(http: requests.Session) -> bool:
        return http.get(live.url + "/dashboard/", allow_redirects=False).status_code == 200

    forged = requests.Session()
    no_token = forged.post(live.url + "/dashboard/login", data={"api_key": API_KEY}, allow_redirects=False)
    assert no_token.status_code == 403 and "own page" in html.unescape(no_token.text)
    assert not signed_in(forged)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        http = requests.Session()
        response = post_login(http, live.url, {"api_key": API_KEY}, headers=headers, allow_redirects=False)
        assert response.status_code == 403, headers
        assert not signed_in(http)
    # The dashboard's own page, as a browser posts it (its own Origin), signs in.
    http = requests.Session()
    own = post_login(http, live.url, {"api_key": API_KEY}, headers={"Origin": live.url}, allow_redirects=False)
    assert own.status_code == 302 and signed_in(http)
