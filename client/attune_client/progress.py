"""Progress for people: one redrawn line on a terminal, a line per change (at most one a
second, the last always) when the output goes to a log or a pipe."""

from __future__ import annotations

import shutil
import sys
import time
from typing import IO, Any

from attune_client.uploads import UploadProgress


class StatusLine:
    """A line of status on stderr."""

    def __init__(self, stream: IO[str] | None = None, every_s: float = 1.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s, self.shown, self.at = every_s, "", 0.0

    def show(self, text: str, force: bool = False) -> None:
        """Show `text` in place of the last one."""
        now = time.monotonic()
        if text == self.shown or (not force and not self.tty and now - self.at < self.every_s):
            return
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + text[:width].ljust(min(width, len(self.shown))))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.shown, self.at = text, now

    def close(self) -> None:
        """End the line on a terminal, so what follows starts on its own."""
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def bar(done: float, total: float, width: int = 24) -> str:
    """[#########---------------]"""
    filled = round(width * min(1.0, done / total)) if total > 0 else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def size_text(size: float) -> str:
    """Bytes for people: 512 KB, 48.2 MB, 2.0 GB."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1024:.0f} KB"


def upload_text(progress: UploadProgress) -> str:
    """The upload line: bar, bytes and files."""
    return (f"{bar(progress.bytes_done, progress.bytes_total)} "
            f"{size_text(progress.bytes_done)} / {size_text(progress.bytes_total)}, "
            f"{progress.files_done}/{progress.files_total} files")  # fmt: skip


def training_text(run: dict[str, Any]) -> str:
    """The training line: status, then bar, step, loss and time left once it runs."""
    progress = run["progress"]
    if run["status"] == "queued":
        position = progress.get("queue_position")
        return f"Run {run['id']} queued" + (f" (position {position})" if position else "")
    step, total = progress.get("step") or 0, progress.get("total_steps") or 0
    parts = [f"Run {run['id']} {run['status']}", bar(step, total), f"step {step}/{total}"]
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.4f}")
    if progress.get("eta_seconds") is not None and run["status"] == "running":
        minutes, seconds = divmod(int(progress["eta_seconds"]), 60)
        parts.append(f"{minutes}:{seconds:02d} left")
    return "  ".join(parts)
