"""Attune's training engine: data prep, model families, LoRA trainer, sampling, export.

``import training`` stays light (no torch); names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.config import TrainingConfig
    from training.data.buckets import plan_buckets
    from training.generation import generate
    from training.models import FAMILY_NAMES, get_family, make_tiny
    from training.results import ProgressEvent, TrainResult
    from training.trainer import train

__all__ = [
    "FAMILY_NAMES",
    "ProgressEvent",
    "TrainResult",
    "TrainingConfig",
    "generate",
    "get_family",
    "make_tiny",
    "plan_buckets",
    "train",
]

_WHERE = {
    "TrainingConfig": "training.config",
    "train": "training.trainer",
    "generate": "training.generation",
    "TrainResult": "training.results",
    "ProgressEvent": "training.results",
    "plan_buckets": "training.data.buckets",
    "make_tiny": "training.models",
    "get_family": "training.models",
    "FAMILY_NAMES": "training.models",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
