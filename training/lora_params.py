"""How the LoRA's trainable tensors are laid out and run: flat fp32 buffer, lean forward, AMP.

Flat buffer: every LoRA weight becomes a view into one fp32 parameter and every gradient a view
into that parameter's ``.grad``, so gradient clipping, AdamW and zeroing are one kernel each
instead of one per tensor (hundreds for FLUX and Wan), which is most of the per-step overhead
left once latents and prompt embeddings are cached. Gradients accumulate in place into the
views, so they are zeroed, never set to None.

Lean forward: PEFT's ``lora.Linear.forward`` computes ``base(x) + lora_B(lora_A(dropout(x)))
* scaling`` through argument checks, four submodule calls and a multiply even when dropout is 0
and the scale 1; on small models that Python is most of the layer's time. Each LoRA linear of
our adapter gets an instance ``forward`` computing the same sum with three ``F.linear`` calls
(multiplying only when the scale is not 1) and handing every other case (merged, disabled,
another adapter active, extra arguments) to PEFT's own forward. Values and gradients are
PEFT's (tests/training/test_lora_params.py checks them); PEFT still injects, names, saves and
loads the adapter.

Mixed precision: when the frozen weights are bf16/fp16 the forward runs under
``torch.autocast`` in that dtype and PEFT's cast of each LoRA input to fp32 is switched off:
the LoRA matmuls run on the tensor cores and save bf16 activations, while the master weights,
gradients and AdamW state stay fp32 (the usual AMP recipe; bf16 needs no loss scaling).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from training.models.base import LoadedModel


def flatten_lora(params: list[torch.nn.Parameter]) -> torch.nn.Parameter:
    """Move params (any dtype) into one fp32 parameter with a zeroed gradient; return it."""
    import torch

    total = sum(p.numel() for p in params)
    flat = torch.nn.Parameter(torch.empty(total, dtype=torch.float32, device=params[0].device))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    with torch.no_grad():
        for param in params:
            size = param.numel()
            view = flat.data[offset : offset + size].view(param.shape)
            view.copy_(param.data)
            param.data = view
            param.grad = flat.grad[offset : offset + size].view(param.shape)
            offset += size
    return flat


def step_only(
    optimizer: torch.optim.Optimizer, active: torch.nn.Parameter, params: list[torch.nn.Parameter]
) -> None:
    """``optimizer.step()`` for ``active`` alone among the flat parameters ``params``.

    With one LoRA per denoiser only the denoiser that ran has gradients; the others' zeroed
    gradients are hidden so AdamW skips them instead of moving them on stale momentum and
    weight decay (PyTorch's optimizers skip parameters whose ``.grad`` is None).
    """
    hidden = [(param, param.grad) for param in params if param is not active]
    for param, _ in hidden:
        param.grad = None
    try:
        optimizer.step()
    finally:
        for param, grad in hidden:
            param.grad = grad  # the per-tensor gradient views still point into this buffer


def autocast(model: LoadedModel) -> AbstractContextManager[object]:
    """torch.autocast in the frozen weights' dtype when that is below fp32, else nothing."""
    import torch

    if model.dtype not in (torch.bfloat16, torch.float16):
        return nullcontext()
    return torch.autocast(model.device.type, dtype=model.dtype)


def keep_lora_inputs(denoiser: torch.nn.Module) -> None:
    """Stop PEFT casting each LoRA input to fp32 (autocast picks the matmul dtype instead)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in denoiser.modules():
        if isinstance(module, BaseTunerLayer):
            module.cast_input_dtype_enabled = False


def clip_gradients(flat: torch.nn.Parameter, max_norm: float) -> torch.Tensor:
    """clip_grad_norm_ for the one flat parameter, without its per-call grouping overhead."""
    import torch

    grad = flat.grad
    norm = torch.linalg.vector_norm(grad)
    grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))  # torch's formula exactly
    return norm


def lean_lora_forward(denoiser: torch.nn.Module, adapter: str = "default") -> int:
    """Give every plain LoRA linear of ``adapter`` the lean forward; returns how many."""
    import types

    import torch
    from peft.tuners.lora.layer import Linear

    forward = _lean_forward(adapter)
    count = 0
    for module in denoiser.modules():
        plain = (
            isinstance(module, Linear)
            and type(module.get_base_layer()) is torch.nn.Linear
            and adapter in module.lora_A
            and adapter not in module.lora_variant  # DoRA and friends keep PEFT's path
            and isinstance(module.lora_dropout[adapter], torch.nn.Identity)
            and not module.fan_in_fan_out
        )
        if plain:
            module.forward = types.MethodType(forward, module)
            count += 1
    return count


def _lean_forward(adapter: str) -> Any:
    import torch.nn.functional as F

    def forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        """PEFT lora.Linear.forward for one active plain adapter; anything else goes to PEFT."""
        if args or kwargs or self.disable_adapters or self.merged:
            return type(self).forward(self, x, *args, **kwargs)
        if self.active_adapters != [adapter]:
            return type(self).forward(self, x, *args, **kwargs)
        base = self.base_layer
        result = F.linear(x, base.weight, base.bias)
        lora_a, lora_b = self.lora_A[adapter].weight, self.lora_B[adapter]
        if x.dtype != lora_a.dtype and self.cast_input_dtype_enabled:
            x = x.to(lora_a.dtype)
        update = F.linear(F.linear(x, lora_a), lora_b.weight, lora_b.bias)
        scaling = self.scaling[adapter]
        out = result + (update if scaling == 1 else update * scaling)
        return out if out.dtype == result.dtype else out.to(result.dtype)

    return forward
