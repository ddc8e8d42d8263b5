"""A SendMessage body (as the connector schema loaded it) turned into the delivery service's request."""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.delivery.service import MessageRequest


def message_request(args: dict[str, Any]) -> MessageRequest:
    """The REST view and the MCP tool send_message take the same fields; one place reads them."""
    return MessageRequest(
        recipient=args["recipient"],
        text=args.get("text"),
        card=args.get("card"),
        summary=args.get("summary"),
        idempotency_key=args.get("idempotencyKey"),
        deliver_at=args.get("deliverAt"),
        deliver_at_local_time=args.get("deliverAtLocalTime"),
        tenant_id=args.get("tenantId"),
        card_type=args.get("cardType"),
        install_if_missing=bool(args.get("installIfMissing")),
    )
