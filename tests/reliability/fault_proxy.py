"""A small HTTP proxy on 127.0.0.1 that forwards to an S3 server and injects faults on demand:
500/503 answers, connections dropped without an answer, and answers that never come."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
S3_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    b"<Message>injected by the test proxy</Message></Error>"
)


@dataclass
class Fault:
    """Break the next `count` requests whose method and path match."""

    kind: str  # "500", "503", "reset" or "hang"
    method: str | None = None  # None: any method
    contains: str = ""  # a substring of the path and query
    count: int = 1
    hang_s: float = 3.0


@dataclass
class Seen:
    """One request the proxy handled, and the fault it got (or "")."""

    method: str
    path: str
    fault: str


@dataclass
class FaultProxy:
    """Forwards every request to `upstream`; `inject` queues faults, `seen` records traffic."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        target = urlsplit(self.upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def inject(self, kind: str, method: str | None = None, contains: str = "", count: int = 1,
               hang_s: float = 3.0) -> None:  # fmt: skip
        """Queue a fault for the next `count` matching requests."""
        with self.lock:
            self.faults.append(Fault(kind, method, contains, count, hang_s))

    def clear(self) -> None:
        """Forget queued faults and recorded requests."""
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def injected(self) -> list[Seen]:
        """The requests that were given a fault."""
        with self.lock:
            return [s for s in self.seen if s.fault]

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def _take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.method in (None, method) and fault.contains in path:
                    fault.count -= 1
                    self.seen.append(Seen(method, path, fault.kind))
                    return fault
            self.seen.append(Seen(method, path, ""))
            return None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._take(self.command, self.path)
                if fault is not None and fault.kind in ("reset", "hang"):
                    if fault.kind == "hang":
                        time.sleep(fault.hang_s)
                    self.close_connection = True
                    return  # no answer at all: the client sees a dropped connection or a timeout
                if fault is not None:
                    code = b"InternalError" if fault.kind == "500" else b"SlowDown"
                    payload = S3_ERROR.replace(b"{code}", code)
                    self.send_response(int(fault.kind))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":  # a body after HEAD would corrupt the next answer
                        self.wfile.write(payload)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection(proxy._host, proxy._port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status, answer.reason)
                head = self.command == "HEAD"  # keeps the object's length, has no body
                for name, value in answer.getheaders():
                    lower = name.lower()
                    if lower not in HOP_BY_HOP and (head or lower != "content-length"):
                        self.send_header(name, value)
                if not head:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if not head:
                    self.wfile.write(payload)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    """Connections that clients drop after an injected hang are expected, not errors."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass
