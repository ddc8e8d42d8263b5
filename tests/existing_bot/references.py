"""ConversationReference JSON as other bots write it, for import tests and the import benchmark.

Three writers, as they serialise a reference: botbuilder (C#/JavaScript, and Python's ``serialize()``:
camelCase with ``bot``), botbuilder Python's ``as_dict()`` (snake_case), and the Microsoft 365 Agents
SDK (``model_dump(by_alias=True)``: camelCase with ``agent``). One person per index; every tenth one
also has a Microsoft 365 Copilot reference (kept, never a send target).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TENANT = "tenant-imported"
BOT = {"id": "28:00000000-0000-0000-0000-00000000b07", "name": "Contoso Helper"}


def aad(index: int) -> str:
    return f"00000000-0000-4000-9000-{index:012d}"


def chat(index: int) -> str:
    return f"a:imported-chat-{index:06d}"


def reference(index: int, service_url: str, *, m365: bool = False) -> dict[str, Any]:
    user = {"id": f"29:imported-{index:06d}", "name": f"Person {index}", "aadObjectId": aad(index)}
    conversation = {
        "id": f"m365:imported-{index:06d}" if m365 else chat(index),
        "conversationType": "personal",
        "tenantId": TENANT,
    }
    channel = "m365extensions" if m365 else "msteams"
    writer = index % 3
    if writer == 0:  # botbuilder C# / JavaScript / Python serialize()
        return {"activityId": f"f:{index}", "user": user, "bot": BOT, "conversation": conversation,
                "channelId": channel, "locale": "en-US", "serviceUrl": service_url}  # fmt: skip
    if writer == 1:  # botbuilder Python as_dict(): snake_case
        return {
            "activity_id": f"f:{index}",
            "user": {"id": user["id"], "name": user["name"], "aad_object_id": user["aadObjectId"]},
            "bot": BOT,
            "conversation": {"id": conversation["id"], "conversation_type": "personal", "tenant_id": TENANT},
            "channel_id": channel,
            "service_url": service_url,
        }
    # The Agents SDK: "agent" instead of "bot"
    return {"activityId": f"f:{index}", "user": user, "agent": BOT, "conversation": conversation,
            "channelId": channel, "serviceUrl": service_url}  # fmt: skip


def documents(count: int, service_url: str) -> list[tuple[str, dict[str, Any]]]:
    """``count`` files' worth: (name, reference), the Microsoft 365 Copilot ones included in the count."""
    found: list[tuple[str, dict[str, Any]]] = []
    index = 0
    while len(found) < count:
        found.append((f"teams/{index:06d}.json", reference(index, service_url)))
        if index % 10 == 0 and len(found) < count:
            found.append((f"m365/{index:06d}.json", reference(index, service_url, m365=True)))
        index += 1
    return found


MALFORMED = ("broken/oops.json", b'{"user": {"id": "29:x"}, "conversation": ')


def write_folder(folder: Path, count: int, service_url: str) -> None:
    for name, doc in documents(count, service_url):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    (folder / MALFORMED[0]).parent.mkdir(parents=True, exist_ok=True)
    (folder / MALFORMED[0]).write_bytes(MALFORMED[1])


def upload_container(container: Any, count: int, service_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def upload(item: tuple[str, bytes]) -> None:
        container.upload_blob(item[0], item[1], overwrite=True)

    payloads = [(name, json.dumps(doc).encode()) for name, doc in documents(count, service_url)]
    payloads.append(MALFORMED)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(upload, payloads))
