"""The trainer's LoRA layout changes speed only: same outputs and gradients as PEFT's own path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.training.tiny_assets_flow import add_lora, load_cpu
from training.lora_params import clip_gradients, flatten_lora, lean_lora_forward
from training.models import get_family

SD = get_family("tiny-sd")


def _unet_output(model: object, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, 32, generator=generator)
    unet = SD.denoiser(model)  # type: ignore[arg-type]
    return unet(sample, torch.tensor([10, 500]), encoder_hidden_states=context).sample


def _unet_step(model: object, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """UNet output and the LoRA gradients for one fixed input."""
    unet = SD.denoiser(model)  # type: ignore[arg-type]
    out = _unet_output(model, seed)
    out.square().mean().backward()
    params = [p for p in unet.parameters() if p.requires_grad]
    grads = [p.grad.clone() for p in params]
    for param in params:
        param.grad = None
    return out.detach(), grads


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`:UserWarning")
@pytest.mark.parametrize("alpha", [4.0, 8.0])  # scale 1 (multiply skipped) and scale 2
def test_lean_lora_forward_matches_peft(tiny_model: Callable[[str], Path], alpha: float) -> None:
    from peft import LoraConfig

    model = load_cpu(SD, tiny_model("tiny-sd"))
    unet = SD.denoiser(model)
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=alpha, target_modules=SD.lora_target_modules())
    unet.add_adapter(config)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    peft_out, peft_grads = _unet_step(model)
    assert lean_lora_forward(unet) == 4 * 8  # q, k, v, out of 8 attention layers
    lean_out, lean_grads = _unet_step(model)
    torch.testing.assert_close(lean_out, peft_out)
    for lean, peft in zip(lean_grads, peft_grads, strict=True):
        torch.testing.assert_close(lean, peft)

    # Another adapter active (the speed bench's reference on a shared GPU model): PEFT's path.
    unet.add_adapter(config, adapter_name="other")  # lora_B starts at zero: no change
    unet.set_adapter("other")
    with torch.no_grad():
        other = _unet_output(model)
        unet.disable_adapters()
        base = _unet_output(model)
    torch.testing.assert_close(other, base)
    assert not torch.allclose(lean_out, base)


def test_flat_parameters_train_like_separate_ones(tiny_model: Callable[[str], Path]) -> None:
    """One clipped AdamW step on the flat buffer moves every weight as per-tensor AdamW does."""
    folder = tiny_model("tiny-sd")
    separate, flat = load_cpu(SD, folder), load_cpu(SD, folder)
    separate_params, flat_params = add_lora(SD, separate), add_lora(SD, flat)
    one = flatten_lora(flat_params)
    for model in (separate, flat):
        sample, context = torch.ones(1, 4, 8, 8), torch.ones(1, 77, 32)
        out = SD.denoiser(model)(sample, torch.tensor([3]), encoder_hidden_states=context)
        out.sample.square().mean().backward()
    torch.nn.utils.clip_grad_norm_(separate_params, 1e-3)
    clip_gradients(one, 1e-3)
    assert one.grad is not None and one.grad.abs().sum() > 0  # accumulated into the views
    torch.optim.AdamW(separate_params, lr=1e-2).step()
    torch.optim.AdamW([one], lr=1e-2).step()
    for a, b in zip(separate_params, flat_params, strict=True):
        assert a.data_ptr() != b.data_ptr()
        torch.testing.assert_close(a, b)
