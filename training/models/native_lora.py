"""LoRA files in a model's native (original checkpoint) key layout, as ComfyUI loads them.

Every family's ComfyUI/A1111 file is written here from one map, ``Family.comfyui_module``
(diffusers module -> where its LoRA goes), and checked back against the same map
(``native_deltas``), so writing and verifying cannot drift apart. Most families use ComfyUI's
generic ``diffusion_model.<native module>`` keys; SD and FLUX.1 use kohya's
``lora_unet_<module_with_underscores>`` names, which ComfyUI, A1111 and Forge read for them.

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
    prefix: str = NATIVE_PREFIX,
) -> dict[str, torch.Tensor]:
    """diffusers LoRA tensors -> ``<prefix><native>`` down/up/alpha, fp32, fused.

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
        key = prefix + name
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


_FILE_PARTS = {
    **{spelling[0]: "down" for spelling in (KOHYA_SPELLING, DOT_SPELLING, PEFT_SPELLING)},
    **{spelling[1]: "up" for spelling in (KOHYA_SPELLING, DOT_SPELLING, PEFT_SPELLING)},
    ".alpha": "alpha",
}


def file_deltas(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Key stem -> the weight change a ComfyUI-style loader applies: up @ down * alpha / rank.

    Read the way ComfyUI's ``comfy/lora.py`` reads it: scale alpha / rank when an ``.alpha``
    tensor is present, else 1. ExportError names stems that lack a down or an up weight.
    """
    stems: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        suffix = next((s for s in _FILE_PARTS if key.endswith(s)), None)
        if suffix is None:
            raise ExportError("not a LoRA down/up/alpha tensor", [key])
        stems.setdefault(key.removesuffix(suffix), {})[_FILE_PARTS[suffix]] = tensor
    incomplete = sorted(stem for stem, parts in stems.items() if {"down", "up"} - set(parts))
    if incomplete:
        raise ExportError("LoRA modules without both a down and an up weight", incomplete)
    deltas = {}
    for stem, parts in stems.items():
        down, up = parts["down"].float().flatten(1), parts["up"].float().flatten(1)
        scale = float(parts["alpha"]) / down.shape[0] if "alpha" in parts else 1.0
        deltas[stem] = (up @ down) * scale
    return deltas


def native_deltas(
    tensors: dict[str, torch.Tensor],
    rows: dict[str, int],
    native_of: Callable[[str], NativeModule | None],
    prefix: str = NATIVE_PREFIX,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A native-layout file's weight change per diffusers module, split out of fused modules.

    ``rows``: diffusers module -> its output width. A fused module's change is its parts'
    changes stacked in slot order, so each part's rows are cut out by those widths. Returns
    (module -> delta for the modules the file holds, problems: modules without a native name,
    stems no module maps to, fused modules of the wrong width).
    """
    stems, problems = file_deltas(tensors), []
    fused: dict[str, dict[int, str]] = {}
    for module in rows:
        target = native_of(module)
        if target is None:
            problems.append(f"{module} (no native name)")
        else:
            fused.setdefault(prefix + target.name, {})[target.slot] = module
    problems += [f"{stem} (no module maps to it)" for stem in sorted(set(stems) - set(fused))]
    deltas = {}
    for stem, slots in sorted(fused.items()):
        if stem not in stems:
            continue  # its modules are missing from the result; the caller names them
        ordered = [slots[slot] for slot in sorted(slots)]
        if sum(rows[m] for m in ordered) != stems[stem].shape[0]:
            problems.append(f"{stem} (width {stems[stem].shape[0]} is not its parts')")
            continue
        start = 0
        for module in ordered:
            deltas[module] = stems[stem][start : start + rows[module]]
            start += rows[module]
    return deltas, problems
