"""LoRA files in a model's native (original checkpoint) key layout, as ComfyUI loads them.

ComfyUI keeps a model under its original checkpoint names and, for any model, maps a LoRA key
``diffusion_model.<native module>`` onto ``<native module>.weight`` (``comfy/lora.py``
``model_lora_keys_unet``, the generic path). Where the original checkpoint fuses projections
that diffusers keeps separate (FLUX's and Z-Image's q/k/v), the fused module's LoRA is the
block-diagonal combination of the separate ones: down = cat(A_1..A_n), up = diag(B_1..B_n),
rank n*r and alpha n*alpha so alpha/rank is unchanged. It applies exactly the same update, and
diffusers' converters split it back into per-module LoRAs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.errors import ExportError

if TYPE_CHECKING:
    import torch

NATIVE_PREFIX = "diffusion_model."
# PEFT names, and the names convert_state_dict_to_diffusers gives attention projections.
_PARTS = {
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora.down.weight": "down",
    ".lora.up.weight": "up",
}
KOHYA_SPELLING = (".lora_down.weight", ".lora_up.weight")
DOT_SPELLING = (".lora.down.weight", ".lora.up.weight")  # ComfyUI reads it too
PEFT_SPELLING = (".lora_A.weight", ".lora_B.weight")  # ai-toolkit's FLUX.2 files; ComfyUI too


@dataclass(frozen=True)
class NativeModule:
    """Where one diffusers module's LoRA goes in the native layout."""

    name: str  # native module path, e.g. "layers.0.attention.qkv"
    slot: int = 0  # its place among the projections fused into that module
    parts: int = 1  # how many diffusers modules the native one fuses


def block_diagonal(
    downs: list[torch.Tensor], ups: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LoRA for a fused linear from its parts' (down, up): cat(downs), block_diag(ups)."""
    import torch

    if len({down.shape[0] for down in downs}) != 1:
        raise ExportError("fused projections must share one rank")
    return torch.cat(downs, dim=0), torch.block_diag(*ups)


def native_lora(
    lora_state_dict: dict[str, torch.Tensor],
    alpha: float,
    native_of: Callable[[str], NativeModule | None],
    spelling: tuple[str, str] = KOHYA_SPELLING,
    fold_alpha: bool = False,
) -> dict[str, torch.Tensor]:
    """diffusers LoRA tensors -> ``diffusion_model.<native>`` down/up/alpha, fp32, fused.

    ``fold_alpha``: no ``.alpha`` keys; alpha / rank is multiplied into the up weights instead
    (diffusers' FLUX.2 converter refuses alpha keys in this layout; ComfyUI then scales by 1).
    """
    import torch

    converted: dict[str, torch.Tensor] = {}
    for name, (parts, slots) in sorted(_group(lora_state_dict, native_of).items()):
        if sorted(slots) != list(range(parts)) or any(len(s) != 2 for s in slots.values()):
            raise ExportError(f"{name} needs LoRA on all {parts} fused projections")
        ordered = [slots[i] for i in range(parts)]
        if parts == 1:
            down, up = ordered[0]["down"], ordered[0]["up"]
        else:
            down, up = block_diagonal([p["down"] for p in ordered], [p["up"] for p in ordered])
        key = NATIVE_PREFIX + name
        up = up.detach().float()
        if fold_alpha:
            up = up * (float(alpha) * parts / down.shape[0])
        else:
            converted[key + ".alpha"] = torch.tensor(float(alpha) * parts)
        converted[key + spelling[0]] = down.detach().float().contiguous()
        converted[key + spelling[1]] = up.contiguous()
    return converted


def _group(
    lora_state_dict: dict[str, torch.Tensor], native_of: Callable[[str], NativeModule | None]
) -> dict[str, tuple[int, dict[int, dict[str, torch.Tensor]]]]:
    """native name -> (parts, slot -> {"down": A, "up": B}); ExportError lists unmapped keys."""
    groups: dict[str, tuple[int, dict[int, dict[str, torch.Tensor]]]] = {}
    unmapped = []
    for key, tensor in lora_state_dict.items():
        plain = key.removeprefix("transformer.")
        suffix = next((s for s in _PARTS if plain.endswith(s)), None)
        target = native_of(plain[: -len(suffix)]) if suffix else None
        if target is None:
            unmapped.append(key)
            continue
        _, slots = groups.setdefault(target.name, (target.parts, {}))
        slots.setdefault(target.slot, {})[_PARTS[suffix]] = tensor
    if unmapped:
        raise ExportError("no native checkpoint name for these LoRA tensors", unmapped)
    return groups
