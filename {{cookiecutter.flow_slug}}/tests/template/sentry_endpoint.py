"""A Sentry ingestion endpoint on 127.0.0.1 that keeps what the real SDK sends.

The SDK posts envelopes over its real HTTP transport; this server decodes them so that
tests can read the events as Sentry would. The template's own suite uses it too, and
makes it misbehave as a broken Sentry does: answer another status (429, 500), never
answer (`hang=True`), or answer late (`delay` seconds). With a fixed
`reply` it also stands in for an AWS endpoint that answers every call with one error.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List


class SentryEndpoint:
    """Start with `start()`; `dsn` points the SDK here; `events()` are the errors received."""

    def __init__(
        self, status: int = 200, hang: bool = False, reply: bytes = b"{}", delay: float = 0.0
    ) -> None:
        self._envelopes: List[List[Dict[str, Any]]] = []
        self.bodies: List[bytes] = []  # raw, decompressed: what left the process
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Sentry's ingestion does: the SDK sends every event over one
            # connection instead of opening a new one for each.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                endpoint._keep(body)
                if hang:
                    endpoint._stopped.wait()
                    return
                if delay:  # a slow Sentry: the SDK's next event waits in its queue
                    endpoint._stopped.wait(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.dsn = f"http://public@127.0.0.1:{self._server.server_port}/1"

    def start(self) -> SentryEndpoint:
        # Polls every 10 ms for `stop()`: each test stops one or more endpoints.
        serve = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        serve.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._lock:
            self._envelopes.clear()
            self.bodies.clear()

    def items(self, item_type: str) -> List[Dict[str, Any]]:
        with self._lock:
            return [
                item
                for envelope in self._envelopes
                for item in envelope
                if item.get("type") == item_type
            ]

    def events(self, expected: int = 0, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The error events received, waiting up to `timeout` for `expected` of them."""
        return self._payloads("event", expected, timeout)

    def check_ins(self, expected: int = 0, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The Sentry Crons check-ins received, waiting as `events()` does."""
        return self._payloads("check_in", expected, timeout)

    def spans(self, expected: int = 0, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The spans received (span streaming sends them in batches), waiting as `events()` does."""
        deadline = time.monotonic() + timeout
        while True:
            spans = [span for batch in self._payloads("span", 0, 0) for span in batch["items"]]
            if len(spans) >= expected or time.monotonic() >= deadline:
                return spans
            time.sleep(0.02)

    def _payloads(self, item_type: str, expected: int, timeout: float) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.items(item_type)) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return [item["payload"] for item in self.items(item_type)]

    def _keep(self, body: bytes) -> None:
        with self._lock:
            self.bodies.append(body)
            self._envelopes.append(list(_envelope_items(body)))


def _envelope_items(body: bytes) -> Iterator[Dict[str, Any]]:
    """The items of one envelope: a header line, then per item a header and a payload."""
    position = body.find(b"\n") + 1
    while 0 < position < len(body):
        header_end = _line_end(body, position)
        header = json.loads(body[position:header_end])
        start = header_end + 1
        end = start + header["length"] if "length" in header else _line_end(body, start)
        yield {"type": header.get("type"), "payload": _json_or_bytes(body[start:end])}
        position = end + 1


def _line_end(body: bytes, start: int) -> int:
    end = body.find(b"\n", start)
    return len(body) if end == -1 else end


def _json_or_bytes(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload
