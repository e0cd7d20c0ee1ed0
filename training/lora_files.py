"""LoRA safetensors files: metadata in the header, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header metadata of a file (empty dict when there is none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def add_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Rewrite path with metadata merged into its header (existing keys kept unless replaced)."""
    from safetensors.torch import load_file, save_file

    merged = {**read_metadata(path), **metadata}
    tensors = load_file(str(path))
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=merged)
    tmp.replace(path)


def save_with_metadata(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]
) -> None:
    """Write contiguous tensors and metadata atomically (temp file, then rename)."""
    from safetensors.torch import save_file

    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)
