"""A LoRA merged into the frozen base for training only: in for the loss, out for samples.

Step-distilled bases (Z-Image Turbo) drift out of their few-step behaviour when a LoRA is
trained on them directly. ostris' training adapter (ai-toolkit ``assistant_lora_path``) is a
LoRA that undoes the distillation: merged into the base while training, the user's LoRA learns
only the new concept; left out at inference, the LoRA runs on the plain distilled base at few
steps. So the adapter is merged into the frozen weights once (no cost per step), and it never
reaches the exported LoRA, which holds only the trained adapter. Samples rendered during
training must show the plain base plus the LoRA: ``without_adapter`` subtracts the adapter's
exact update from each covered module's output while sampling, instead of un-merging weights
(a bf16 subtract-after-add would not restore them and would drift with every sample).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from training.models.base import LoadedModel

EXTRAS_KEY = "training_adapter"
_AB_KEY = re.compile(r"^transformer\.(.+)\.lora_(A|B)\.weight$")


@dataclass(frozen=True)
class AdapterSource:
    """Where an adapter file is: a local folder or hub repo, and the file inside it."""

    location: str
    weight_name: str | None
    local: bool


def adapter_source(requested: str, base_folder: str, default: str) -> AdapterSource | None:
    """The adapter to merge: "none" = none; "" = base_folder/training_adapter/ or ``default``.

    ``requested`` (and ``default``) is a local .safetensors file, a local folder holding one,
    a hub repo id, or a hub ``owner/repo/file.safetensors`` path (ai-toolkit's spelling).
    """
    if requested == "none":
        return None
    if not requested:
        beside = Path(base_folder) / "training_adapter"
        requested = str(beside) if beside.is_dir() else default
    path = Path(requested).expanduser()
    if path.is_file():
        return AdapterSource(str(path.parent), path.name, local=True)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise ModelLoadError(f"{requested!r} must hold exactly one .safetensors adapter")
        return AdapterSource(str(path), files[0].name, local=True)
    owner, _, rest = requested.partition("/")
    repo, _, weight = rest.partition("/")
    if requested.startswith((".", "/", "~")) or not owner or not repo:
        raise ModelLoadError(f"training adapter {requested!r} is no local file, folder or hub id")
    return AdapterSource(f"{owner}/{repo}", weight or None, local=False)


def merge_adapter(model: LoadedModel, source: AdapterSource, denoiser: torch.nn.Module) -> int:
    """Add the adapter's update to the frozen weights; keep its factors for ``without_adapter``.

    Reads the file with the pipeline class's own ``lora_state_dict`` (so every layout diffusers
    converts is accepted, alpha folded in). Returns the number of modules merged.
    """
    import torch

    factors = _read_factors(model, source)
    for name, (down, up) in factors.items():
        try:
            module = denoiser.get_submodule(name)
        except AttributeError as exc:
            raise ModelLoadError(f"training adapter names {name}, not in this model") from exc
        weight = module.weight
        if weight.shape != (up.shape[0], down.shape[1]):
            raise ModelLoadError(f"training adapter shapes do not fit {name}")
        with torch.no_grad():
            delta = up.to(weight.device, torch.float32) @ down.to(weight.device, torch.float32)
            weight.copy_((weight.float() + delta).to(weight.dtype))
    model.extras[EXTRAS_KEY] = {
        name: (down.to(model.device, model.dtype), up.to(model.device, model.dtype))
        for name, (down, up) in factors.items()
    }
    return len(factors)


def _read_factors(
    model: LoadedModel, source: AdapterSource
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name -> (down, up) of the adapter, alpha/rank already folded into them."""
    kwargs: dict[str, Any] = {"use_safetensors": True, "local_files_only": source.local}
    if source.weight_name:
        kwargs["weight_name"] = source.weight_name
    try:
        state, metadata = type(model.pipeline).lora_state_dict(
            source.location, return_lora_metadata=True, **kwargs
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load the training adapter {source.location}: {exc}") from exc
    scale = _peft_scale(metadata or {})
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        match = _AB_KEY.match(key)
        if match is None:
            raise ModelLoadError(f"training adapter tensor {key} is not a transformer LoRA weight")
        parts.setdefault(match[1], {})[match[2]] = tensor
    if not parts or any(len(pair) != 2 for pair in parts.values()):
        raise ModelLoadError(f"training adapter {source.location} has no complete LoRA pairs")
    return {name: (pair["A"] * scale, pair["B"]) for name, pair in parts.items()}


def _peft_scale(metadata: dict[str, Any]) -> float:
    """lora_alpha / r of a PEFT-format file (kohya-style files fold alpha in; scale 1)."""
    metadata = {key.removeprefix("transformer."): value for key, value in metadata.items()}
    if metadata.get("rank_pattern") or metadata.get("alpha_pattern"):
        raise ModelLoadError("training adapters with per-module ranks are not supported")
    if "r" not in metadata or "lora_alpha" not in metadata:
        return 1.0
    return float(metadata["lora_alpha"]) / float(metadata["r"])


@contextmanager
def without_adapter(model: LoadedModel, denoiser: torch.nn.Module) -> Iterator[None]:
    """While open, each merged module's output loses the adapter's update (nothing if none)."""
    import torch.nn.functional as F

    factors = model.extras.get(EXTRAS_KEY, {})
    handles = []
    for name, (down, up) in factors.items():

        def subtract(module: Any, args: tuple[Any, ...], output: Any, d=down, u=up) -> Any:
            return output - F.linear(F.linear(args[0].to(d.dtype), d), u).to(output.dtype)

        handles.append(denoiser.get_submodule(name).register_forward_hook(subtract))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
