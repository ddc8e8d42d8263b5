"""Where imported references come from: a JSON or JSON Lines file, a folder of them, standard input, a blob container.

A file holds one reference, a list, ``{"references": [...]}``, or one reference per line (JSON
Lines). A file or line that is not JSON becomes one ``Invalid`` item naming it, and the rest goes on.
Blobs are read with ``azure-storage-blob``'s async client, many at a time; the container URL carries
a SAS, or else the caller signs in with Entra ID (``azure-identity``'s DefaultAzureCredential: a
managed identity, the Azure CLI, environment credentials).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from teams_proactive.bot.imports.importer import ImportItem

SUFFIXES = (".json", ".jsonl", ".ndjson")
BLOB_READS_AT_ONCE = 32


def items_from_text(text: str, source: str, modified_at: float | None = None) -> Iterator[ImportItem]:
    """The references in one file's text (see the module docstring for the shapes)."""
    try:
        document = json.loads(text)
    except ValueError:
        document = _NOT_JSON
    if document is not _NOT_JSON:
        yield from items_from_document(document, source, modified_at)
        return
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        yield ImportItem(source, error="The file is not JSON.", modified_at=modified_at)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield ImportItem(f"{source}#{number}", json.loads(line), modified_at=modified_at)
        except ValueError:
            yield ImportItem(f"{source}#{number}", error="The line is not JSON.", modified_at=modified_at)


_NOT_JSON = object()


def items_from_document(document: Any, source: str, modified_at: float | None = None) -> Iterator[ImportItem]:
    if isinstance(document, dict) and isinstance(document.get("references"), list):
        document = document["references"]
    if isinstance(document, list):
        for index, entry in enumerate(document):
            yield ImportItem(f"{source}[{index}]", entry, modified_at=modified_at)
    else:
        yield ImportItem(source, document, modified_at=modified_at)


def _read(path: Path) -> tuple[str | None, str | None, float]:
    modified = path.stat().st_mtime
    try:
        return path.read_bytes().decode("utf-8-sig"), None, modified
    except UnicodeDecodeError:
        return None, "The file is not UTF-8 text.", modified


async def local_items(source: str) -> AsyncIterator[ImportItem]:
    """A file, a folder (its .json/.jsonl files, sorted, sub-folders too) or ``-`` (standard input)."""
    if source == "-":
        text = await asyncio.to_thread(sys.stdin.read)
        for item in items_from_text(text, "stdin"):
            yield item
        return
    path = Path(source)
    kind = await asyncio.to_thread(lambda: "dir" if path.is_dir() else "file" if path.is_file() else None)
    if kind == "dir":
        files = await asyncio.to_thread(lambda: sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES))
        for file in files:
            async for item in _file_items(file, str(file.relative_to(path))):
                yield item
        return
    if kind is None:
        raise FileNotFoundError(f"No such file or folder: {source}")
    async for item in _file_items(path, path.name):
        yield item


async def _file_items(path: Path, name: str) -> AsyncIterator[ImportItem]:
    text, error, modified = await asyncio.to_thread(_read, path)
    if text is None:
        yield ImportItem(name, error=error, modified_at=modified)
        return
    for item in items_from_text(text, name, modified):
        yield item


def has_sas(url: str) -> bool:
    return "sig" in parse_qs(urlsplit(url).query)


async def blob_items(container_url: str, *, prefix: str | None = None) -> AsyncIterator[ImportItem]:
    """Every .json/.jsonl blob of a container, read ``BLOB_READS_AT_ONCE`` at a time."""
    from azure.storage.blob.aio import ContainerClient

    credential: Any = None
    if not has_sas(container_url):
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        async with ContainerClient.from_container_url(container_url, credential=credential) as container:
            batch: list[tuple[str, float | None]] = []
            async for blob in container.list_blobs(name_starts_with=prefix):
                if not blob.name.lower().endswith(SUFFIXES):
                    continue
                modified = blob.last_modified.timestamp() if blob.last_modified else None
                batch.append((blob.name, modified))
                if len(batch) >= BLOB_READS_AT_ONCE:
                    for item in await _read_blobs(container, batch):
                        yield item
                    batch = []
            if batch:
                for item in await _read_blobs(container, batch):
                    yield item
    finally:
        if credential is not None:
            await credential.close()


async def _read_blobs(container: Any, batch: list[tuple[str, float | None]]) -> list[ImportItem]:
    async def read(name: str, modified: float | None) -> list[ImportItem]:
        downloader = await container.download_blob(name)
        raw: bytes = await downloader.readall()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [ImportItem(name, error="The blob is not UTF-8 text.", modified_at=modified)]
        return list(items_from_text(text, name, modified))

    found = await asyncio.gather(*(read(name, modified) for name, modified in batch))
    return [item for items in found for item in items]
