"""Uploading a folder into a dataset through the presigned flow: parts in parallel, and a re-run
of the same folder picks up where the last one stopped (the server's item list says which files
are in, its part listing which parts of an unfinished file storage already holds)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attune_client.errors import ApiError, AttuneError, Forbidden, Invalid, NotFound
from attune_client.http import Http, Json

CAPTION_SUFFIX = ".txt"
DONE_STATUSES = ("uploaded", "ready", "rejected")


@dataclass(frozen=True)
class LocalFile:
    """A file of the folder to send, with the caption of its same-name .txt."""

    path: Path
    name: str  # its path inside the folder, '/'-separated: the item's filename on the server
    size: int
    caption: str | None


@dataclass
class UploadProgress:
    """How far an upload_dir call is; passed to its on_progress callback."""

    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    last_file: str | None = None


@dataclass
class UploadResult:
    """What an upload_dir call did, file by file (names as inside the folder)."""

    dataset: Json
    uploaded: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)  # complete before this call
    refused: dict[str, str] = field(default_factory=dict)  # the server will not take them
    failed: dict[str, str] = field(default_factory=dict)  # interrupted: a re-run resumes
    unmatched_captions: list[str] = field(default_factory=list)


def scan_folder(directory: Path) -> tuple[list[LocalFile], list[str]]:
    """The files under `directory` (hidden ones aside) and the captions with no file beside."""
    if not directory.is_dir():
        raise AttuneError(f"{directory} is not a folder.")
    paths = sorted(
        p for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )  # fmt: skip
    media = [p for p in paths if p.suffix.lower() != CAPTION_SUFFIX]
    stems = {p.with_suffix("") for p in media}
    captions = {p.with_suffix(""): p for p in paths if p.suffix.lower() == CAPTION_SUFFIX}
    files = [
        LocalFile(p, p.relative_to(directory).as_posix(), p.stat().st_size,
                  _read_caption(captions.get(p.with_suffix(""))))
        for p in media
    ]  # fmt: skip
    unmatched = [c.relative_to(directory).as_posix() for s, c in captions.items() if s not in stems]
    return files, sorted(unmatched)


def _read_caption(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8-sig").strip() or None
    except UnicodeDecodeError as exc:
        raise AttuneError(f"{path} is not UTF-8 text; captions must be UTF-8.") from exc


class FolderUpload:
    """One upload_dir call: decides per file (skip, resume, send) and sends in parallel."""

    def __init__(
        self,
        http: Http,
        dataset: Json,
        workers: int,
        on_progress: Callable[[UploadProgress], None] | None,
    ) -> None:
        self.http, self.dataset, self.workers = http, dataset, max(1, workers)
        self.base = f"/datasets/{dataset['id']}/uploads"
        self.on_progress = on_progress
        self.progress = UploadProgress()
        self.lock = threading.Lock()
        self.parts = ThreadPoolExecutor(self.workers, thread_name_prefix="attune-part")

    def run(self, directory: Path) -> UploadResult:
        """Send every file of `directory` the dataset does not hold complete yet."""
        files, unmatched = scan_folder(directory)
        result = UploadResult(self.dataset, unmatched_captions=unmatched)
        listed = self.http.pages(f"/datasets/{self.dataset['id']}/items")
        on_server = {item["filename"]: item for item in listed}  # the latest of a name wins
        to_send = []
        for local in files:
            item = on_server.get(local.name)
            if item and item["status"] in DONE_STATUSES and item["size_bytes"] == local.size:
                result.already_there.append(local.name)
            else:
                to_send.append((local, item))
        self.progress.files_total = len(to_send)
        self.progress.bytes_total = sum(local.size for local, _ in to_send)
        self._report()
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="attune-file") as pool:
                outcomes = [(local, pool.submit(self._send_file, local, item))
                            for local, item in to_send]  # fmt: skip
                for local, outcome in outcomes:
                    self._record(result, local, outcome)
        finally:
            self.parts.shutdown(cancel_futures=True)
        return result

    def _record(self, result: UploadResult, local: LocalFile, outcome: Future[None]) -> None:
        error = outcome.exception()
        if error is None:
            result.uploaded.append(local.name)
        elif isinstance(error, _Refused):
            result.refused[local.name] = str(error)
        elif isinstance(error, AttuneError):
            result.failed[local.name] = str(error)
        else:
            raise error

    def _send_file(self, local: LocalFile, item: Json | None) -> None:
        target = self._resume(local, item) if item and item["status"] == "uploading" else None
        if target is None:
            target = self._start(local)
        item_id, sent = target["item"]["id"], target.get("parts_held", [])
        self._advance(sum(part["size"] for part in sent))
        if target["method"] == "single":
            headers = {"Content-Type": target["content_type"]}
            self.http.put_bytes(target["urls"][0], local.path.read_bytes(), headers)
            self._advance(local.size)
            parts: list[Json] = []
        else:
            parts = self._send_parts(local, target, {p["part_number"]: p for p in sent})
        self.http.call("POST", f"{self.base}/{item_id}/complete", {"parts": parts})
        with self.lock:
            self.progress.files_done += 1
            self.progress.last_file = local.name
        self._report()

    def _start(self, local: LocalFile) -> Json:
        body: dict[str, Any] = {"filename": local.path.name, "size": local.size,
                                "relative_path": local.name}  # fmt: skip
        if local.caption is not None:
            body["caption"] = local.caption
        try:
            return self.http.call("POST", self.base, body)
        except ApiError as exc:
            if exc.status in (400, 409, 413, 422):
                raise _Refused(exc.detail) from exc
            raise

    def _resume(self, local: LocalFile, item: Json) -> Json | None:
        """Fresh URLs for this file's unfinished upload and the parts storage holds, or None
        to start it again (a file of another size is another file; an upload storage has
        ended cannot go on)."""
        path = f"{self.base}/{item['id']}"
        if item["size_bytes"] == local.size:
            try:
                target = self.http.call("GET", f"{path}/target")
                if target["method"] == "multipart":
                    target["parts_held"] = self.http.call("GET", f"{path}/parts")["parts"]
                return target
            except Invalid:
                pass
        with contextlib.suppress(NotFound):
            self.http.call("DELETE", path)
        return None

    def _send_parts(self, local: LocalFile, target: Json, held: dict[int, Json]) -> list[Json]:
        size, count = target["part_size"], target["part_count"]
        futures = {}
        for number in range(1, count + 1):
            expected = min(size, local.size - (number - 1) * size)
            if number in held and held[number]["size"] == expected:
                continue
            futures[number] = self.parts.submit(
                self._send_part, local, target["item"]["id"], number, size, target["urls"]
            )
        etags = {n: p["etag"] for n, p in held.items()}
        try:
            for number, future in futures.items():
                etags[number] = future.result()
        finally:
            for future in futures.values():
                future.cancel()
        return [{"part_number": n, "etag": etags[n]} for n in sorted(etags)]

    def _send_part(
        self, local: LocalFile, item_id: int, number: int, size: int, urls: list[str]
    ) -> str:
        with open(local.path, "rb") as handle:
            handle.seek((number - 1) * size)
            data = handle.read(size)
        try:
            response = self.http.put_bytes(urls[number - 1], data, {})
        except Forbidden:  # the URL expired during a long upload: sign it again, once
            fresh = self.http.call("GET", f"{self.base}/{item_id}/parts/{number}")["url"]
            response = self.http.put_bytes(fresh, data, {})
        self._advance(len(data))
        return response.headers["ETag"]

    def _advance(self, sent: int) -> None:
        with self.lock:
            self.progress.bytes_done += sent
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            with self.lock:
                self.on_progress(UploadProgress(**vars(self.progress)))


class _Refused(AttuneError):
    """The server will not take this file as it is (type, size, storage left)."""
