"""Where each family's base model comes from on this worker."""

from __future__ import annotations

import fcntl
from pathlib import Path

from app.trainings.families import base_model_source, tiny_model_folder


def resolve_base_model(family: str) -> str:
    """A local folder or hub id for `family`, the tiny model built first where it is one."""
    folder = tiny_model_folder(family)
    if folder is not None and not (folder / "model_index.json").exists():
        _build_tiny(family, folder)
    return base_model_source(family)


def _build_tiny(family: str, target: Path) -> None:
    """Write the tiny random model under a lock, so two workers never write it together."""
    from training import make_tiny

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "model_index.json").exists():
            make_tiny(family, target)
