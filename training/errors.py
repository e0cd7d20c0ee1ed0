"""Typed errors raised by the training engine; callers map them to user-facing messages."""

from __future__ import annotations

from pathlib import Path


class TrainingError(Exception):
    """Base class of every error the training engine raises on purpose."""


class ConfigError(TrainingError):
    """A configuration value is missing, malformed or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DatasetError(TrainingError):
    """The dataset cannot be used (empty, nothing decodable, unreadable folder)."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = str(path) if path is not None else None


class ModelLoadError(TrainingError):
    """The base model could not be loaded from the given folder or hub id."""


class TrainingOutOfMemory(TrainingError):
    """The accelerator ran out of memory; the message says what to lower."""


class ResumeMismatch(TrainingError):
    """A checkpoint was trained with other settings or data than this run; it is not resumed.

    ``fields`` maps each differing setting (``dataset`` for the data) to (checkpoint, run).
    """

    def __init__(self, checkpoint: str, fields: dict[str, tuple[object, object]]) -> None:
        changes = "; ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in fields.items())
        super().__init__(
            f"{checkpoint} was trained with other settings than this run ({changes}); resuming "
            "may only add steps. To change them, start a new run from the checkpoint "
            "(train(..., start_from=...), --from-checkpoint) or use a fresh output folder"
        )
        self.checkpoint = checkpoint
        self.fields = fields


class ExportError(TrainingError):
    """A LoRA file could not be written or did not load back completely."""

    def __init__(self, message: str, unloaded_keys: list[str] | None = None) -> None:
        keys = unloaded_keys or []
        shown = ", ".join(keys[:10]) + (f" (+{len(keys) - 10} more)" if len(keys) > 10 else "")
        super().__init__(f"{message}: {shown}" if keys else message)
        self.message = message
        self.unloaded_keys = keys
