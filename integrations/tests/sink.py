"""A recording calendar for the write queue's tests: a tiny HTTP event store with CalDAV's create semantics
(PUT with If-None-Match: * answers 412 when the resource exists), fault injection, and a log of every
request it handled, so a test can prove that no event was created twice. Test scaffolding, not a platform
emulator: the real two-way calendars (Google, CalDAV) are tested against their own emulator / Radicale.

``SinkConnector`` is registered for a writable platform through the test settings' CONNECTOR_OVERRIDES
(env HUB_TEST_CONNECTORS), so worker processes started by a test load it too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from integrations.base import Connector, ConnectorError, PushResult, deterministic_event_id
from integrations.http import HttpClient


class Sink:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str, int]] = []  # (method, event id, status answered)
        self.faults: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.latency = 0.0  # seconds every answer takes (so that concurrent senders really overlap)

    def fault(self, kind: str, times: int = 1, **options: Any) -> None:
        self.faults.extend({"kind": kind, **options} for _ in range(times))

    def created(self) -> Counter[str]:
        return Counter(eid for method, eid, status in self.log if method == "PUT" and status == 201)

    def handle(self, method: str, eid: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
            if fault and fault["kind"] == "rate_limit":
                status, extra = 429, {"Retry-After": str(fault.get("retry_after", 120))}
            elif fault and fault["kind"] == "unauthorized":
                status, extra = 401, {}
            elif fault and fault["kind"] == "bad_request":
                status, extra = 400, {}
            elif fault and fault["kind"] == "server_error":
                status, extra = 503, {}
            elif method == "PUT":
                exists = eid in self.events
                if headers.get("If-None-Match") == "*" and exists:
                    status = 412
                else:
                    self.events[eid] = json.loads(body)
                    status = 204 if exists else 201
                extra = {}
            elif method == "DELETE":
                status = 204 if self.events.pop(eid, None) is not None else 404
                extra = {}
            else:
                status, extra = 405, {}
            self.log.append((method, eid, status))
        time.sleep(self.latency)
        if fault and fault["kind"] == "timeout_after_accept":
            # The change is stored (above), but the answer comes too late for the client's timeout.
            time.sleep(fault.get("seconds", 1.5))
        return status, extra, b""


def serve(sink: Sink) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, extra, payload = sink.handle(
                self.command, self.path.rsplit("/", 1)[-1], self.headers, body
            )
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_PUT = do_DELETE = _do

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class SinkConnector(Connector):
    platform = "outlook"
    supports_write = True

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        credentials = connection.credentials or {}
        self.base_url = credentials["base_url"]
        self.http = HttpClient(platform="sink", timeout=float(credentials.get("timeout", 0.5)))

    def push(self, job: Any) -> PushResult:
        eid = deterministic_event_id(job.payload["uid"])
        url = f"{self.base_url}/events/{eid}"
        if job.operation == "delete":
            self.http.request("DELETE", url, expected=(404,))
            return PushResult(external_id=eid)
        headers = {"If-None-Match": "*"} if job.operation == "create" else {}
        response = self.http.request("PUT", url, json=job.payload, headers=headers, expected=(412,))
        if response.status_code == 412:  # accepted by an earlier attempt whose answer we never got
            self.http.request("PUT", url, json=job.payload)
        return PushResult(external_id=eid, version=str(job.payload["version"]))

    def fetch(self, *, cursor: str | None, window: Any) -> Any:
        raise ConnectorError("The recording calendar is write-only.", permanent=True)
