"""The server process's heap after start-up, kept out of the garbage collector's full passes."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    # Everything start-up built (imported modules, the Flask app, the bot's SDK objects) lives as long
    # as the process, yet every full collection walked it: 70-85 ms with the bot loop held, every ten
    # seconds or so of a 500/s broadcast. Sends due in that time then left together, and Teams counts
    # a burst like that against its per-second limit (bench/README.md). Frozen, a full pass walks only
    # what was made since: 2-10 ms. Only where a process serves for good (cmd_serve, each gunicorn
    # worker), never in tests that build many apps in one process.
    gc.collect()
    gc.freeze()
