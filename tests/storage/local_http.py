"""A tiny HTTP server in front of LocalStorage, doing what the app's two storage routes do.

It lets the shared suite drive the local backend's signed URLs with real HTTP requests, exactly
as it drives S3's presigned URLs, without starting the Flask app. (The app's upload route also
asks whether the item behind the key is still uploading; storage knows nothing of items.)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from storage import (
    InvalidToken,
    LocalStorage,
    ObjectNotFound,
    PayloadTooLarge,
    Readable,
    StorageError,
    attachment_disposition,
)

MAX_UPLOAD_BYTES = 64 * 1024 * 1024


class LocalRoutesServer:
    """Serves GET /download/<token> and PUT /upload/<token> for the storage it is pointed at."""

    def __init__(self) -> None:
        self.storage: LocalStorage | None = None
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.routes = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: pytest output should show test failures, not access logs."""

    @property
    def _storage(self) -> LocalStorage:
        storage = self.server.routes.storage  # type: ignore[attr-defined]
        assert storage is not None, "no LocalStorage attached to the test server"
        return storage

    def do_PUT(self) -> None:
        """Take one object or part, as the app's upload route does."""
        token = self.path.removeprefix("/upload/")
        body = _LimitedReader(self.rfile, int(self.headers.get("Content-Length", "0")))
        try:
            claims = self._storage.verify_token(token, "upload")
            etag = self._storage.write_upload(claims, body, MAX_UPLOAD_BYTES)
        except InvalidToken:
            return self._reply(403)
        except PayloadTooLarge:
            return self._reply(413)
        except StorageError:
            return self._reply(400)
        self._reply(200, {"ETag": f'"{etag}"'})

    def do_GET(self) -> None:
        """Stream one object as an attachment, as the app's download route does."""
        token = self.path.removeprefix("/download/")
        try:
            claims = self._storage.verify_token(token, "download")
            info = self._storage.stat(claims.key)
            if info is None:
                raise ObjectNotFound(claims.key)
            stream = self._storage.open_stream(claims.key)
        except InvalidToken:
            return self._reply(403)
        except ObjectNotFound:
            return self._reply(404)
        headers = {
            "Content-Type": info.content_type or "application/octet-stream",
            "Content-Length": str(info.size),
            "Content-Disposition": attachment_disposition(claims.filename or claims.key),
            "ETag": f'"{info.etag}"',
        }
        self._reply(200, headers, close_after=False)
        with stream:
            for chunk in stream:
                self.wfile.write(chunk)

    def _reply(
        self, status: int, headers: dict[str, str] | None = None, close_after: bool = True
    ) -> None:
        self.send_response(status)
        if status >= 400:
            # The request body may be partly unread; do not reuse the connection.
            self.close_connection = True
            self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close_after:
            self.send_header("Content-Length", "0")
        self.end_headers()


class _LimitedReader:
    """Reads at most Content-Length bytes, as werkzeug's request.stream does."""

    def __init__(self, raw: Readable, length: int) -> None:
        self._raw = raw
        self._left = length

    def read(self, size: int = -1) -> bytes:
        """Return up to size bytes, never past the request body."""
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._raw.read(size)
        self._left -= len(data)
        return data
