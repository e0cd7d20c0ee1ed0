"""Where each family's base model comes from on this worker."""

from __future__ import annotations

import fcntl
from pathlib import Path

from app.config import Settings
from catalogue.families import TINY_SOURCE_PREFIX


def resolve_base_model(settings: Settings, family: str) -> str:
    """A local folder or hub id for `family`; "tiny:<family>" builds the tiny model once."""
    source = settings.model_sources[family]
    if not source.startswith(TINY_SOURCE_PREFIX):
        return source
    target = settings.models_dir / source.removeprefix(TINY_SOURCE_PREFIX)
    if (target / "model_index.json").exists():
        return str(target)
    return str(_build_tiny(family, target))


def _build_tiny(family: str, target: Path) -> Path:
    """Write the tiny random model under a lock, so two workers never write it together."""
    from training import make_tiny

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "model_index.json").exists():
            make_tiny(family, target)
    return target
