"""LoRA safetensors files: metadata in the header and the kohya/ComfyUI key layout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_DIFFUSERS_SUFFIXES = {
    ".lora.down.weight": ".lora_down.weight",
    ".lora.up.weight": ".lora_up.weight",
    ".lora_A.weight": ".lora_down.weight",
    ".lora_B.weight": ".lora_up.weight",
}


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


def diffusers_to_kohya(
    lora_state_dict: dict[str, torch.Tensor], alpha: float, prefix: str
) -> dict[str, torch.Tensor]:
    """Rename '<module.path>.lora.down.weight' to '<prefix><module_path>.lora_down.weight' + alpha.

    This is the layout kohya sd-scripts writes for diffusers-named modules; ComfyUI, A1111 and
    diffusers' ``load_lora_weights`` all read it.
    """
    import torch

    converted: dict[str, torch.Tensor] = {}
    for key, tensor in lora_state_dict.items():
        suffix = next((s for s in _DIFFUSERS_SUFFIXES if key.endswith(s)), None)
        if suffix is None:
            raise ValueError(f"not a LoRA down/up weight: {key}")
        kohya_module = prefix + key[: -len(suffix)].replace(".", "_")
        converted[kohya_module + _DIFFUSERS_SUFFIXES[suffix]] = tensor.detach().float().contiguous()
        converted[kohya_module + ".alpha"] = torch.tensor(float(alpha))
    return converted
