"""Registry of model families: catalogue name -> module, imported lazily so lookups stay light."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from catalogue.families import FAMILIES
from training.errors import ConfigError

if TYPE_CHECKING:
    from training.models.base import Family

# Each catalogue entry names the engine module that implements it.
_MODULES: dict[str, str] = {name: facts.module for name, facts in FAMILIES.items()}

FAMILY_NAMES: tuple[str, ...] = tuple(_MODULES)


def get_family(name: str) -> Family:
    """Return the family registered under ``name``; unknown names raise ConfigError('family')."""
    module_name = _MODULES.get(name)
    if module_name is None:
        known = ", ".join(FAMILY_NAMES)
        raise ConfigError("family", f"unknown family {name!r}; choose one of {known}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ConfigError("family", f"family {name!r} is not installed in this build") from exc
    return module.FAMILY


def make_tiny(family_name: str, out_dir: str | Path) -> Path:
    """Write the family's tiny random model in hub layout to out_dir and return the folder."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return get_family(family_name).make_tiny(folder)
