"""FLUX.1 LoRA in the kohya sd-scripts layout (BFL module names), for ComfyUI, Forge and diffusers.

Keys look like ``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight``. The original FLUX
checkpoint (which ComfyUI loads) fuses q, k, v into one ``qkv`` linear, and in single blocks
q, k, v and the MLP input into ``linear1``; diffusers keeps them separate. ``native_lora``
writes a fused module's LoRA block-diagonally (rank n*r, alpha n*alpha, the same update), and
diffusers' ``_convert_kohya_flux_lora_to_diffusers`` splits it back into per-module LoRAs.
"""

from __future__ import annotations

import re

from training.models.native_lora import NativeModule

# diffusers module (inside a block) -> (BFL module, slot in the fused module).
_DOUBLE_BLOCK = {
    "attn.to_q": ("img_attn_qkv", 0),
    "attn.to_k": ("img_attn_qkv", 1),
    "attn.to_v": ("img_attn_qkv", 2),
    "attn.to_out.0": ("img_attn_proj", 0),
    "attn.add_q_proj": ("txt_attn_qkv", 0),
    "attn.add_k_proj": ("txt_attn_qkv", 1),
    "attn.add_v_proj": ("txt_attn_qkv", 2),
    "attn.to_add_out": ("txt_attn_proj", 0),
    "ff.net.0.proj": ("img_mlp_0", 0),
    "ff.net.2": ("img_mlp_2", 0),
    "ff_context.net.0.proj": ("txt_mlp_0", 0),
    "ff_context.net.2": ("txt_mlp_2", 0),
    "norm1.linear": ("img_mod_lin", 0),
    "norm1_context.linear": ("txt_mod_lin", 0),
}
_SINGLE_BLOCK = {
    "attn.to_q": ("linear1", 0),
    "attn.to_k": ("linear1", 1),
    "attn.to_v": ("linear1", 2),
    "proj_mlp": ("linear1", 3),
    "proj_out": ("linear2", 0),
    "norm.linear": ("modulation_lin", 0),
}
_FUSED_PARTS = {"img_attn_qkv": 3, "txt_attn_qkv": 3, "linear1": 4}
_BLOCK_RE = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")
KOHYA_PREFIX = "lora_unet_"


def flux_kohya_module(module: str) -> NativeModule | None:
    """kohya/BFL name (after ``lora_unet_``) and fused slot of a diffusers FLUX module, or None."""
    match = _BLOCK_RE.match(module)
    if match is None:
        return None
    double = match[1] == "transformer_blocks"
    target = (_DOUBLE_BLOCK if double else _SINGLE_BLOCK).get(match[3])
    if target is None:
        return None
    kind = "double" if double else "single"
    name, slot = target
    return NativeModule(f"{kind}_blocks_{match[2]}_{name}", slot, _FUSED_PARTS.get(name, 1))
