"""Quantised frozen base weights (int8 / fp8, torchao) and staged placement on the GPU.

Used by ``training.models.base.load_frozen_pipeline`` for every family: the big frozen
networks a family names (its denoisers) get weight-only quantised ``nn.Linear`` layers, so a
base that needs 18 GB in bf16 needs about 9 GB. Only the weights are quantised: activations,
and the LoRA added on top (PEFT wraps torchao linears as ``TorchaoLoraLinear``), stay in
bf16/fp32, and gradients flow through the dequantised matmul to the LoRA.

Staging: while the text encoders are loaded the denoisers wait on the CPU, so prompt encoding
never holds a text encoder and the denoiser on the GPU at once (FLUX.2-dev: a 48 GB Mistral
and a 64 GB transformer). ``place_staged`` (called from ``Family.free_encoders`` once the
embeddings are cached) quantises each staged denoiser layer by layer onto the device and
moves the rest of it there.

torchao 0.18 was chosen over optimum-quanto (0.2.7, March 2025, before torch 2.13) because
its weight-only configs run on CPU (the tests) and CUDA with the pinned torch, and PEFT 0.21
dispatches LoRA onto its tensors.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

    from training.models.base import LoadedModel

Quantize = Literal["none", "int8", "fp8"]
QUANTIZE_MODES: tuple[str, ...] = ("none", "int8", "fp8")
# The final projection to latent channels is small and sensitive; diffusers' fp8 example
# (train_dreambooth_lora_flux2.py, module_filter_fn) leaves it in full precision too.
_KEEP_FULL_PRECISION = ("proj_out",)


def quantize_frozen(module: torch.nn.Module, mode: str, device: torch.device | None = None) -> int:
    """Weight-only quantise ``module``'s eligible linears in place; returns how many.

    ``device`` moves each linear there before quantising it, so a bf16 copy of the whole
    network never sits on the GPU. Mode "none" changes nothing.
    """
    if mode == "none":
        return 0
    from torchao.quantization import quantize_

    eligible = {id(layer) for _, layer in _eligible_linears(module)}
    quantize_(
        module,
        _config(mode),
        filter_fn=lambda layer, _name: id(layer) in eligible,
        device=device,
    )
    # PEFT warns that merge() is unavailable on these tensors; LoRA training never merges.
    warnings.filterwarnings("ignore", message="TorchaoLoraLinear was instantiated without")
    return len(eligible)


def quantized_linears(module: torch.nn.Module) -> list[str]:
    """Names of the linears in ``module`` whose weight is a torchao quantised tensor."""
    import torch

    names = []
    for name, layer in module.named_modules():
        weight = getattr(layer, "weight", None)
        if isinstance(layer, torch.nn.Linear) and _is_quantized(weight):
            names.append(name)
    return names


def place_staged(model: LoadedModel) -> None:
    """Quantise (if asked) and move the denoisers that waited on the CPU to the model's device."""
    for name in model.staged:
        module = getattr(model.pipeline, name, None)
        if module is None:
            continue
        quantize_frozen(module, model.quantize, model.device)
        module.to(model.device)
    model.staged = ()


def _eligible_linears(module: torch.nn.Module) -> list[tuple[str, Any]]:
    """Linears worth quantising: not LoRA parts, not the output projection, 16-divisible."""
    import torch

    chosen = []
    for name, layer in module.named_modules():
        if type(layer) is not torch.nn.Linear or _is_quantized(layer.weight):
            continue
        if "lora_" in name or name.rsplit(".", 1)[-1] in _KEEP_FULL_PRECISION:
            continue
        if layer.in_features % 16 or layer.out_features % 16:
            continue  # the int8/fp8 kernels want 16-aligned shapes
        chosen.append((name, layer))
    return chosen


def _config(mode: str) -> Any:
    from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig

    if mode == "int8":
        return Int8WeightOnlyConfig()
    if mode == "fp8":
        return Float8WeightOnlyConfig()
    raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {mode!r}")


def _is_quantized(weight: object) -> bool:
    """True for torchao's quantised tensor subclasses (anything but a plain tensor/parameter)."""
    import torch

    if weight is None or type(weight) in (torch.Tensor, torch.nn.Parameter):
        return False
    return type(weight).__module__.startswith("torchao")
