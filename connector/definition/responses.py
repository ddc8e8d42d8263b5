"""Each operation's responses: the asynchronous (202) and webhook (201) shapes, one documented error shape."""

from __future__ import annotations

from typing import Any

from teams_proactive.connector.definition.shape import ordered

# One documented error shape: every error answers {"error": {"code", "message", "target"}}. It is written in
# the descriptions, not as a schema on each status: certification allows a schema on the success response
# only (OperationHasManyResponsesWithSchema), and a flow reads the error from the failed action anyway.
ERROR_SHAPE = 'The body is {"error": {"code", "message", "target"}}.'
ERROR_STATUSES = {
    "400": "The request is not valid (error.code ValidationError).",
    "401": "Missing or wrong credentials (Unauthorized).",
    "403": "The key may not do this (Forbidden).",
    "404": "Unknown person or ID (RecipientNotFound, NotFound).",
    "409": "The person cannot be messaged: opted out, blocked or uninstalled.",
    "429": "Too many requests; retry after Retry-After (Throttled).",
}

SUCCESS_TEXT = {
    "200": "Done.",
    "201": "Created.",
    "202": "Accepted; the flow engine polls the Location until the work is final.",
    "204": "Done; nothing to return.",
}

LOCATION_HEADER = {
    "type": "string",
    "x-ms-summary": "Status URL",
    "description": "The URL the flow engine polls until the operation is done.",
    "x-ms-visibility": "internal",
}
RETRY_AFTER_HEADER = {
    "type": "integer",
    "x-ms-summary": "Retry After",
    "description": "Seconds to wait before polling the status URL again.",
    "x-ms-visibility": "internal",
}
CARD_WAIT_LOCATION_HEADER = {
    "type": "string",
    "x-ms-summary": "Wait URL",
    "description": "The URL the flow engine deletes to stop waiting when the run is cancelled.",
    "x-ms-visibility": "internal",
}
SUBSCRIPTION_LOCATION_HEADER = {
    "type": "string",
    "x-ms-summary": "Subscription URL",
    "description": "The URL the flow engine deletes to stop the trigger.",
    "x-ms-visibility": "internal",
}


def fix_responses(operation: dict[str, Any]) -> None:
    """Power Platform's responses in place of flask-smorest's: headers, descriptions, the error statuses."""
    responses: dict[str, Any] = operation.get("responses", {})
    responses.pop("422", None)  # webargs' own; our validation errors are 400
    responses.pop("default", None)
    if "202" in responses:
        # The asynchronous pattern: the 202 carries the status link; Power Automate polls it and shows
        # the final 200's fields as the action's outputs, so the schema belongs on the 200 alone.
        accepted = responses["202"]
        schema = accepted.pop("schema", None)
        if "200" not in responses and schema is not None:
            responses["200"] = {"description": "Done: the final answer after polling.", "schema": schema}
        accepted["headers"] = {"Location": dict(LOCATION_HEADER), "Retry-After": dict(RETRY_AFTER_HEADER)}
    if operation.get("x-ms-trigger") and "201" in responses:
        responses["201"]["description"] = "The trigger is set up; Location is where to delete it."
        responses["201"]["headers"] = {"Location": dict(SUBSCRIPTION_LOCATION_HEADER)}
    elif operation.get("operationId") == "SendCardAndWait":
        responses["201"]["headers"] = {"Location": dict(CARD_WAIT_LOCATION_HEADER)}
    for status, text in ERROR_STATUSES.items():
        responses[status] = {"description": f"{text} {ERROR_SHAPE}"}
    responses["default"] = {"description": f"An error. {ERROR_SHAPE}"}
    for status, response in responses.items():
        if response.get("description") in (None, "", "OK", "Created", "Accepted", "No Content"):
            response["description"] = SUCCESS_TEXT.get(status, response.get("description") or "Done.")
        responses[status] = ordered(response, ("description", "schema", "headers"))
    operation["responses"] = {k: responses[k] for k in sorted(responses, key=lambda s: (s == "default", s))}
