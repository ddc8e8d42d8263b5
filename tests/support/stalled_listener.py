"""A TCP listener on 127.0.0.1 that accepts connections and never answers: a Microsoft endpoint that stalls."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class StalledListener:
    """``with StalledListener() as stalled:``; ``stalled.url``, ``stalled.accepted`` (count), ``release()``."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._held: list[socket.socket] = []
        self._accepted = 0
        self._hang_up = False
        self._lock = threading.Lock()
        self.first_connection = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="stalled-listener", daemon=True)

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._lock:
                self._accepted += 1
                hang_up = self._hang_up
                if not hang_up:
                    self._held.append(connection)
            if hang_up:  # released: every later connection is closed unanswered too (clients retry once)
                connection.close()
            self.first_connection.set()

    def release(self) -> None:
        """Close every held connection, and each later one at once: the server hangs up without answering."""
        with self._lock:
            self._hang_up = True
            held, self._held = self._held, []
        for connection in held:
            connection.close()

    def __enter__(self) -> StalledListener:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.close()
        self.release()
        self._thread.join(timeout=5)
