"""A Sentry ingestion endpoint on 127.0.0.1 that keeps what the real SDK sends.

The template owns this file. The SDK posts envelopes over its real HTTP transport;
this server decodes them so that tests can read the events as Sentry would.
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

    def __init__(self) -> None:
        self._envelopes: List[List[Dict[str, Any]]] = []
        self.bodies: List[bytes] = []  # raw, decompressed: what left the process
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                endpoint._keep(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public@127.0.0.1:{self._server.server_port}/1"

    def start(self) -> SentryEndpoint:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

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
        deadline = time.monotonic() + timeout
        while len(self.items("event")) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return [item["payload"] for item in self.items("event")]

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
