"""What a message looked like, for the dashboard: its first line and a plain preview of its text or card."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FIRST_LINE_CHARACTERS = 120


@dataclass(slots=True)
class Preview:
    kind: str  # "text" or "card"
    lines: list[str] = field(default_factory=list)  # what a person reads, in order
    buttons: list[str] = field(default_factory=list)  # a card's action titles
    source: str = ""  # the card's JSON, for whoever wants the detail


def preview(content: dict[str, Any]) -> Preview:
    """The text as sent, or a card's visible texts (text blocks, facts, inputs' labels) and its buttons."""
    card = content.get("card")
    if isinstance(card, dict):
        shown = Preview("card", source=json.dumps(card, indent=2, ensure_ascii=False))
        _walk(card.get("body") or [], shown)
        for action in card.get("actions") or []:
            if isinstance(action, dict) and action.get("title"):
                shown.buttons.append(str(action["title"]))
        if not shown.lines and content.get("summary"):
            shown.lines.append(str(content["summary"]))
        return shown
    text = str(content.get("text") or content.get("summary") or "")
    return Preview("text", lines=text.splitlines() or [""])


def first_line(content: dict[str, Any]) -> str:
    """The first thing a person reads: the text's first line, or a card's first text, shortened."""
    shown = preview(content)
    line = next((item.strip() for item in shown.lines if item.strip()), "")
    line = line or str(content.get("summary") or "")
    return line if len(line) <= FIRST_LINE_CHARACTERS else line[: FIRST_LINE_CHARACTERS - 1] + "…"


def _walk(elements: list[Any], shown: Preview) -> None:
    for element in elements:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind == "TextBlock" and element.get("text"):
            shown.lines.append(str(element["text"]))
        elif kind == "RichTextBlock":
            inlines = element.get("inlines") or []
            shown.lines.append("".join(i.get("text", "") if isinstance(i, dict) else str(i) for i in inlines))
        elif kind == "FactSet":
            for fact in element.get("facts") or []:
                shown.lines.append(f"{fact.get('title', '')}: {fact.get('value', '')}")
        elif kind and kind.startswith("Input.") and (element.get("label") or element.get("placeholder")):
            shown.lines.append(f"[{element.get('label') or element.get('placeholder')}]")
        for key in ("items", "columns"):
            if isinstance(element.get(key), list):
                _walk(element[key], shown)
        if isinstance(element.get("actions"), list) and kind == "ActionSet":
            shown.buttons.extend(str(a["title"]) for a in element["actions"] if isinstance(a, dict) and a.get("title"))
