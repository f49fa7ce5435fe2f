"""Sentry endpoints on 127.0.0.1 for the benchmark children to send to.

`TimedEndpoint` is the baked project's own SentryEndpoint, from
`tests/template/sentry_endpoint.py` (imported from the baked project, not copied),
noting when each envelope arrives.
`BlackHole` accepts connections and never answers: a Sentry that hangs.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from pathlib import Path
from typing import Any

FAILURE_PREFIX = "benchmark failure raised at "  # flows.py raises with this message


def timed_endpoint_class(project: Path) -> type:
    """A subclass of the baked SentryEndpoint that records each envelope's arrival."""
    path = project / "tests" / "template" / "sentry_endpoint.py"
    spec = importlib.util.spec_from_file_location("baked_sentry_endpoint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class TimedEndpoint(module.SentryEndpoint):
        def __init__(self) -> None:
            super().__init__()
            self.arrivals: list[tuple[float, bytes]] = []

        def _keep(self, body: bytes) -> None:
            arrived = time.time()
            super()._keep(body)
            with self._lock:
                self.arrivals.append((arrived, body))

        def failure_latencies(self) -> list[float]:
            """Seconds from each benchmark failure being raised to its event arriving."""
            with self._lock:
                arrivals = list(self.arrivals)
            latencies = []
            for arrived, body in arrivals:
                for item in module._envelope_items(body):
                    raised = _raised_at(item["payload"]) if item["type"] == "event" else None
                    if raised is not None:
                        latencies.append(arrived - raised)
            return latencies

    return TimedEndpoint


def _raised_at(event: Any) -> float | None:
    """The time.time() a flows.py task recorded in its exception message, if any."""
    if not isinstance(event, dict):
        return None
    for value in event.get("exception", {}).get("values", []):
        message = str(value.get("value", ""))
        if message.startswith(FAILURE_PREFIX):
            return float(message[len(FAILURE_PREFIX) :])
    return None


class BlackHole:
    """A listening socket on 127.0.0.1 that accepts connections and never replies."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self.dsn = f"http://public@127.0.0.1:{self._socket.getsockname()[1]}/1"

    def start(self) -> BlackHole:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)  # kept open, never read, never answered

    def stop(self) -> None:
        self._stopped.set()
        time.sleep(0.2)  # the accepting thread notices within its 0.1 s timeout
        self._socket.close()
        for connection in self._held:
            connection.close()
