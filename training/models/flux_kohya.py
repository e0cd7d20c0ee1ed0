"""FLUX LoRA in the kohya sd-scripts layout (BFL module names), for ComfyUI, Forge and diffusers.

Keys look like ``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight``. The original FLUX
checkpoint (which ComfyUI loads) fuses q, k, v into one ``qkv`` linear, and in single blocks
q, k, v and the MLP input into ``linear1``; diffusers keeps them separate. A fused module's
LoRA is the block-diagonal combination of the separate ones: down = cat(A_q, A_k, A_v),
up = diag(B_q, B_k, B_v), rank n*r, alpha n*alpha so alpha/rank is unchanged. It applies the
exact same update, and diffusers' ``_convert_kohya_flux_lora_to_diffusers`` recognises the
zero off-diagonal blocks and splits it back into the original per-module LoRAs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from training.errors import ExportError
from training.models.native_lora import block_diagonal

if TYPE_CHECKING:
    import torch

# diffusers module (inside a block) -> (BFL module, slot in the fused module or None).
_DOUBLE_BLOCK = {
    "attn.to_q": ("img_attn_qkv", 0),
    "attn.to_k": ("img_attn_qkv", 1),
    "attn.to_v": ("img_attn_qkv", 2),
    "attn.to_out.0": ("img_attn_proj", None),
    "attn.add_q_proj": ("txt_attn_qkv", 0),
    "attn.add_k_proj": ("txt_attn_qkv", 1),
    "attn.add_v_proj": ("txt_attn_qkv", 2),
    "attn.to_add_out": ("txt_attn_proj", None),
    "ff.net.0.proj": ("img_mlp_0", None),
    "ff.net.2": ("img_mlp_2", None),
    "ff_context.net.0.proj": ("txt_mlp_0", None),
    "ff_context.net.2": ("txt_mlp_2", None),
    "norm1.linear": ("img_mod_lin", None),
    "norm1_context.linear": ("txt_mod_lin", None),
}
_SINGLE_BLOCK = {
    "attn.to_q": ("linear1", 0),
    "attn.to_k": ("linear1", 1),
    "attn.to_v": ("linear1", 2),
    "proj_mlp": ("linear1", 3),
    "proj_out": ("linear2", None),
    "norm.linear": ("modulation_lin", None),
}
_FUSED_PARTS = {"img_attn_qkv": 3, "txt_attn_qkv": 3, "linear1": 4}
_BLOCK_RE = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")
# PEFT names, and the names convert_state_dict_to_diffusers gives them.
_SUFFIXES = {
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora.down.weight": "down",
    ".lora.up.weight": "up",
}


def flux_to_kohya(
    lora_state_dict: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """diffusers FLUX LoRA (lora_A/lora_B, no prefix) -> kohya BFL keys with .alpha."""
    import torch

    groups = _group_by_bfl_module(lora_state_dict)
    converted: dict[str, torch.Tensor] = {}
    for (name, bfl_module), parts in sorted(groups.items()):
        expected = _FUSED_PARTS.get(bfl_module)
        if expected is None:
            down, up = parts[None]["down"], parts[None]["up"]
            scale_alpha = alpha
        else:
            down, up, scale_alpha = _fuse(name, parts, expected, alpha)
        converted[f"{name}.lora_down.weight"] = down.detach().float().contiguous()
        converted[f"{name}.lora_up.weight"] = up.detach().float().contiguous()
        converted[f"{name}.alpha"] = torch.tensor(float(scale_alpha))
    return converted


def _group_by_bfl_module(
    lora_state_dict: dict[str, torch.Tensor],
) -> dict[tuple[str, str], dict[int | None, dict[str, torch.Tensor]]]:
    """(kohya name, BFL module) -> slot -> {"down": A, "up": B}; ExportError if unmappable."""
    groups: dict[tuple[str, str], dict[int | None, dict[str, torch.Tensor]]] = {}
    unmapped = []
    for key, tensor in lora_state_dict.items():
        plain = key.removeprefix("transformer.")
        suffix = next((s for s in _SUFFIXES if plain.endswith(s)), None)
        match = _BLOCK_RE.match(plain[: -len(suffix)]) if suffix else None
        table = _DOUBLE_BLOCK if match and match[1] == "transformer_blocks" else _SINGLE_BLOCK
        target = table.get(match[3]) if match else None
        if target is None:
            unmapped.append(key)
            continue
        kind = "double" if match[1] == "transformer_blocks" else "single"
        name = f"lora_unet_{kind}_blocks_{match[2]}_{target[0]}"
        slots = groups.setdefault((name, target[0]), {})
        slots.setdefault(target[1], {})[_SUFFIXES[suffix]] = tensor
    if unmapped:
        raise ExportError("no kohya/BFL name for these FLUX LoRA tensors", unmapped)
    return groups


def _fuse(
    name: str, parts: dict[int | None, dict[str, torch.Tensor]], expected: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Block-diagonal LoRA for a fused BFL linear from its separate diffusers parts."""
    slots = sorted(slot for slot in parts if slot is not None)
    if slots != list(range(expected)) or any(len(parts[s]) != 2 for s in slots):
        raise ExportError(f"{name} needs LoRA on all {expected} fused projections, got {slots}")
    down, up = block_diagonal([parts[s]["down"] for s in slots], [parts[s]["up"] for s in slots])
    return down, up, alpha * expected
