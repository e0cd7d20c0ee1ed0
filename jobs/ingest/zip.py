"""Unpacking an uploaded zip safely: the listing is checked before any byte is unpacked (entry
count, paths, links, encryption, nested archives), then entries are streamed out one at a
time while the bytes actually produced are counted: header sizes are never trusted.

Entry names are for display and caption pairing only; files land under names we choose.
"""

from __future__ import annotations

import itertools
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.datasets.limits import (
    ACCEPTED_FILES,
    CAPTION_EXTENSION,
    MAX_ARCHIVE_ENTRIES,
    MAX_ARCHIVE_UNPACKED_BYTES,
    MAX_CAPTION_BYTES,
    MAX_CAPTION_CHARS,
    extension_of,
    megabytes,
)
from app.datasets.uploads import clean_display_name as display_name
from jobs.ingest.facts import Rejected

CHUNK = 1024 * 1024
LOCAL_HEADER_BYTES = 30  # the fixed part of a zip entry's local header
NESTED_ARCHIVES = frozenset(
    {".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".jar", ".apk", ".cbz"}
)
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.[^/]*$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")
CAPTION_TOO_LONG = f"The caption is longer than {MAX_CAPTION_CHARS:,} characters."
_BROKEN = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one zip may hold."""

    max_entries: int = MAX_ARCHIVE_ENTRIES
    max_unpacked_bytes: int = MAX_ARCHIVE_UNPACKED_BYTES


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Entry:
    """One file of the archive: its display path, and the unpacked file or why it was refused."""

    name: str
    path: Path | None = None
    reason: str | None = None
    text: str | None = None  # captions only

    @property
    def extension(self) -> str:
        """The lower-cased extension of the entry's name."""
        return extension_of(self.name)


class ArchiveReader:
    """Checks a zip's listing on open; then yields captions and media entries one by one."""

    def __init__(self, path: Path, workdir: Path, limits: ArchiveLimits | None = None) -> None:
        limits = limits or DEFAULT_LIMITS
        self.limits, self.workdir, self.unpacked = limits, workdir, 0
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except _BROKEN as exc:
            raise Rejected("The zip is damaged and cannot be read.") from exc
        self._files = [info for info in infos if not info.is_dir()]
        check_listing(self._files, limits)

    def close(self) -> None:
        """Release the zip file."""
        self._zip.close()

    def captions(self) -> dict[str, Entry]:
        """Every .txt entry, read and checked, by display path; failures carry a reason."""
        found = {}
        for info in self._wanted():
            name = display_name(info.filename)
            if extension_of(name) == CAPTION_EXTENSION:
                found[name] = self._read_caption(info, name)
        return found

    def media(self) -> Iterator[Entry]:
        """Each media entry unpacked to its own file (the caller deletes it), or refused."""
        for index, info in enumerate(self._wanted()):
            name = display_name(info.filename)
            extension = extension_of(name)
            if extension == CAPTION_EXTENSION:
                continue
            kind = ACCEPTED_FILES.get(extension)
            if kind is None or kind.media_kind == "archive":
                yield Entry(name, reason=f"Not a supported file type ({extension or 'none'}).")
            elif info.file_size > kind.max_bytes:
                yield Entry(name, reason=f"Larger than {megabytes(kind.max_bytes)}.")
            else:
                target = self.workdir / f"entry-{index}{extension}"
                self._extract(info, target, kind.max_bytes)
                yield Entry(name, path=target)

    def _wanted(self) -> Iterator[zipfile.ZipInfo]:
        return (info for info in self._files if not _JUNK.search(display_name(info.filename)))

    def _read_caption(self, info: zipfile.ZipInfo, name: str) -> Entry:
        target = self.workdir / "caption.txt"
        try:
            self._extract(info, target, MAX_CAPTION_BYTES, whole_archive=False)
            text = target.read_bytes().decode("utf-8").removeprefix("\ufeff").strip()
        except UnicodeDecodeError:
            return Entry(name, reason="The caption is not UTF-8 text.")
        except Rejected:
            return Entry(name, reason=CAPTION_TOO_LONG)
        finally:
            target.unlink(missing_ok=True)
        if len(text) > MAX_CAPTION_CHARS:
            return Entry(name, reason=CAPTION_TOO_LONG)
        return Entry(name, text=text)

    def _extract(
        self, info: zipfile.ZipInfo, target: Path, max_bytes: int, whole_archive: bool = True
    ) -> None:
        """Stream one entry out, counting real bytes against its limit and the archive's."""
        written = 0
        try:
            with self._zip.open(info) as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    self.unpacked += len(chunk)
                    if self.unpacked > self.limits.max_unpacked_bytes:
                        raise Rejected(_bomb(self.limits))
                    if written > max_bytes:
                        if not whole_archive:
                            raise Rejected("entry too large")
                        raise Rejected(
                            f"“{display_name(info.filename)}” unpacks to more than its header "
                            "says; the zip looks crafted to exhaust memory or disk (a zip bomb). "
                            "Nothing was kept."
                        )
                    out.write(chunk)
        except _BROKEN as exc:
            target.unlink(missing_ok=True)
            raise Rejected(
                f"The zip is damaged: “{display_name(info.filename)}” does not unpack cleanly."
            ) from exc


def check_listing(files: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    """Refuse the whole zip for too many entries, unsafe paths, links, encryption or nesting."""
    if len(files) > limits.max_entries:
        raise Rejected(f"The zip holds {len(files):,} files; the limit is {limits.max_entries:,}.")
    for info in files:
        raw, name = info.filename, display_name(info.filename)
        parts = raw.replace("\\", "/").split("/")
        if raw.startswith(("/", "\\")) or _DRIVE.match(raw) or "\x00" in raw:
            raise Rejected(f"The zip contains an absolute path (“{name}”); nothing was unpacked.")
        if ".." in parts:
            raise Rejected(
                f"The zip contains a path that leads outside its folder (“{raw[:120]}”); "
                "nothing was unpacked."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise Rejected(
                f"The zip contains a symbolic link (“{name}”); links are not allowed, "
                "nothing was unpacked."
            )
        if info.flag_bits & 0x1:
            raise Rejected(
                f"The zip is password-protected (“{name}”); upload it without a password."
            )
        if extension_of(name) in NESTED_ARCHIVES:
            raise Rejected(
                f"The zip contains another archive (“{name}”); put all files in one zip, "
                "not archives inside it."
            )
    if sum(info.file_size for info in files) > limits.max_unpacked_bytes:
        raise Rejected(_bomb(limits))
    check_no_overlap(files)


def check_no_overlap(files: list[zipfile.ZipInfo]) -> None:
    """Refuse entries that share bytes: many names over one compressed stream is the
    overlapping-entry zip bomb (kilobytes that unpack to gigabytes, entry by entry)."""
    spans = sorted((info.header_offset, info.compress_size, info.filename) for info in files)
    for (start, size, name), (following, _, _) in itertools.pairwise(spans):
        if following < start + LOCAL_HEADER_BYTES + size:
            raise Rejected(
                f"The zip's entries overlap (“{display_name(name)}” shares its bytes with "
                "another entry), a trick used by zip bombs; nothing was unpacked."
            )


def _bomb(limits: ArchiveLimits) -> str:
    return (
        f"The zip unpacks to more than {megabytes(limits.max_unpacked_bytes)}, the limit; "
        "nothing was kept."
    )
