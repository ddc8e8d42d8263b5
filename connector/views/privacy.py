"""The privacy statement the connector definition links to (x-ms-connector-metadata "Privacy policy")."""

from __future__ import annotations

from flask import Blueprint, Response

blp = Blueprint("privacy", __name__)

# What the service keeps and for how long, in the words of DESIGN.md and docs/operations: certification
# asks for a privacy policy URL, and the people a deployment messages deserve a page that says this.
PRIVACY_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy statement</title></head>
<body>
<h1>Privacy statement</h1>
<p>This service is run by your organisation. It sends messages from your organisation's own bot to
people's personal chat with that bot, on behalf of the flows and agents your organisation builds.</p>
<h2>What it keeps</h2>
<ul>
<li>For each person who installed the bot: the conversation reference Teams gives the bot (chat ID,
Teams user ID, Microsoft Entra object ID, tenant), and the name, sign-in name, email address, time zone
and language Teams reports.</li>
<li>The messages and cards it was asked to send, their delivery status and, for cards, the answers.</li>
<li>The settings of the flows that subscribed to bot events (the callback address).</li>
</ul>
<h2>What it does not do</h2>
<ul>
<li>It does not write message contents, addresses or keys to its logs.</li>
<li>It does not share data with anyone but the flows and agents of your organisation that call it.</li>
</ul>
<h2>How long</h2>
<p>Delivered messages are kept for the retention period your administrator set, then erased. Typing
<em>stop</em> in the chat stops messages. An administrator can erase everything kept about a person
(the Forget a person operation); the data is then physically deleted.</p>
<h2>Contact</h2>
<p>Ask the administrator who runs this service in your organisation.</p>
</body></html>
"""


@blp.get("/privacy")
def privacy() -> Response:
    """The privacy statement (static: nothing about the caller is read or kept)."""
    return Response(PRIVACY_HTML, mimetype="text/html")
