"""Read receipts posted to /api/messages as Teams sends them: the right deliveries get readAt, in that chat only."""

from __future__ import annotations

from typing import Any

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.connector.test_triggers import assert_documented, subscribe
from tests.delivery.conftest import final_delivery, install
from tests.engagement.conftest import documented_receipt, read_receipt
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def _send(live: LiveApp, user: act.TeamsUser, text: str) -> dict[str, Any]:
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": text, "wait": 20})
    assert response.status_code == 200, response.text
    delivered = response.json()
    assert delivered["status"] == "delivered" and delivered["readAt"] is None
    return delivered


def _message(live: LiveApp, delivery_id: str) -> dict[str, Any]:
    response = live.api("GET", f"/api/v1/messages/{delivery_id}", API_KEY)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_fixture_is_the_documented_event() -> None:
    receipt = documented_receipt()
    assert receipt["type"] == "event" and receipt["name"] == "application/vnd.microsoft.readReceipt"
    assert receipt["channelId"] == "msteams" and receipt["conversation"]["conversationType"] == "personal"
    assert receipt["value"]["lastReadMessageId"].isdigit()


def test_a_receipt_marks_the_messages_up_to_it_read_in_that_chat_only(
    engage_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    ana, ben = make_user("Ana", "ana@contoso.example"), make_user("Ben", "ben@contoso.example")
    install(engage_live, connector, ana)
    install(engage_live, connector, ben)
    first, second = _send(engage_live, ana, "one"), _send(engage_live, ana, "two")
    bens = _send(engage_live, ben, "for ben")
    # Ids grow with time: Ben's message, sent last, has the highest id.
    assert int(first["teamsMessageId"]) < int(second["teamsMessageId"]) < int(bens["teamsMessageId"])

    # Ana read up to her first message.
    answer = engage_live.activity(read_receipt(ana, connector.service_url(), first["teamsMessageId"]))
    assert answer.status_code == 200, answer.text
    read_first = _message(engage_live, first["id"])["readAt"]
    assert read_first is not None
    assert _message(engage_live, second["id"])["readAt"] is None
    assert _message(engage_live, bens["id"])["readAt"] is None

    # Ana's next receipt goes past Ben's message id: only Ana's chat is concerned.
    engage_live.activity(read_receipt(ana, connector.service_url(), bens["teamsMessageId"]))
    assert _message(engage_live, second["id"])["readAt"] is not None
    assert _message(engage_live, first["id"])["readAt"] == read_first  # the first receipt's time stays
    assert _message(engage_live, bens["id"])["readAt"] is None

    # Ben's receipt marks Ben's message.
    engage_live.activity(read_receipt(ben, connector.service_url(), bens["teamsMessageId"]))
    assert _message(engage_live, bens["id"])["readAt"] is not None


def test_receipts_that_concern_nothing_of_ours_change_nothing(
    engage_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    ana, ben = make_user("Ana", "ana@contoso.example"), make_user("Ben", "ben@contoso.example")
    stranger = make_user("Stranger", "stranger@contoso.example")
    install(engage_live, connector, ana)
    install(engage_live, connector, ben)
    sent = _send(engage_live, ana, "hello")
    url = connector.service_url()
    highest = str(int(sent["teamsMessageId"]) + 1_000_000)

    receipts = [
        read_receipt(ana, url, "not-a-number"),  # not a Teams message id
        read_receipt(ana, url, ""),
        read_receipt(ana, url, None),
        read_receipt(ana, url, str(int(sent["teamsMessageId"]) - 1)),  # before any message of ours
        read_receipt(ben, url, highest),  # Ben's own chat: Ana's message is not in it
        read_receipt(ben, url, highest, conversation_id=ana.conversation_id),  # another person's chat
        read_receipt(stranger, url, highest),  # someone the bot never talked to
    ]
    for receipt in receipts:
        answer = engage_live.activity(receipt)
        assert answer.status_code == 200, answer.text  # unknown or useless events are answered, never errors
    assert _message(engage_live, sent["id"])["readAt"] is None
    # A malformed value object is answered too.
    broken = read_receipt(ana, url, highest)
    broken["value"] = "garbage"
    assert engage_live.activity(broken).status_code == 200
    assert _message(engage_live, sent["id"])["readAt"] is None


def test_on_message_read_trigger_tells_the_flow_once(
    engage_live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    ana = make_user("Ana", "ana@contoso.example")
    install(engage_live, connector, ana)
    subscribe(engage_live, hooks, "/message-reads", "reads")
    subscribe(engage_live, hooks, "", "any", event="any")
    sent = _send(engage_live, ana, "please read")
    engage_live.activity(read_receipt(ana, connector.service_url(), sent["teamsMessageId"]))
    engage_live.activity(read_receipt(ana, connector.service_url(), sent["teamsMessageId"]))  # again: no second event
    (payload,) = wait_until(lambda: hooks.bodies("reads"), what="the read callback")
    assert_documented(payload, "/message-reads")
    assert payload["event"] == "messageRead" and payload["id"] == sent["id"]
    assert payload["recipient"] == ana.upn and payload["teamsMessageId"] == sent["teamsMessageId"]
    assert payload["readAt"] == _message(engage_live, sent["id"])["readAt"]
    # A later event proves the relay has moved on; the read was told once, and not to "any".
    engage_live.activity(act.message(ana, connector.service_url(), "thanks"))
    wait_until(lambda: hooks.bodies("any"), what="the message callback")
    assert len(hooks.bodies("reads")) == 1
    assert {p["event"] for p in hooks.bodies("any")} == {"userMessage"}


def test_read_at_comes_after_delivered_at(
    engage_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    ana = make_user("Ana", "ana@contoso.example")
    install(engage_live, connector, ana)
    sent = _send(engage_live, ana, "plain")
    engage_live.activity(read_receipt(ana, connector.service_url(), sent["teamsMessageId"]))
    final = final_delivery(engage_live, sent["id"])
    assert final["readAt"] and final["readAt"] >= final["deliveredAt"]


def test_only_ascii_message_numbers_count_and_odd_ones_raise_nothing(
    engage_live: LiveApp, connector: FakeConnector, make_user, caplog: Any
) -> None:
    ana = make_user("Ana", "ana@contoso.example")
    install(engage_live, connector, ana)
    sent = _send(engage_live, ana, "hello")
    url = connector.service_url()
    highest = str(int(sent["teamsMessageId"]) + 1_000_000)
    arabic_indic = highest.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    odd = ["²", "9" * 5000, arabic_indic, "1" * 21, f"-{highest}", f"{highest}.5"]
    caplog.set_level("INFO")
    for value in odd:
        answer = engage_live.activity(read_receipt(ana, url, value))
        assert answer.status_code == 200, (value[:20], answer.text)
    assert _message(engage_live, sent["id"])["readAt"] is None
    # Ignored quietly: no traceback from inside the turn.
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]
    # A plain number still counts.
    engage_live.activity(read_receipt(ana, url, highest))
    assert _message(engage_live, sent["id"])["readAt"] is not None
