"""Checks on exported LoRA files that several test folders share: a served run's files load
into the tiny SD pipeline and change its output; a checkpoint's two files pass the final
export's verification."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.support.live_service import LiveService
from training import TrainingConfig
from training.export import ExportedFiles, expected_deltas, verify_lora_files
from training.models import get_family


def assert_loads_and_changes_output(service: LiveService, files: list[Path]) -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    from app.extensions import get_settings

    with service.app.app_context():
        model_dir = get_settings().models_dir / "tiny-sd"
    pipe = StableDiffusionPipeline.from_pretrained(str(model_dir), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)

    def render() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        out = pipe("sks_noise", num_inference_steps=2, height=64, width=64,
                   generator=generator, output_type="pt")  # fmt: skip
        return out.images

    base = render()
    for index, path in enumerate(files):
        pipe.load_lora_weights(str(path), adapter_name=f"file{index}")
        pipe.set_adapters([f"file{index}"], [1.0])
        assert not torch.allclose(render(), base), f"{path.name} did not change the output"
        pipe.delete_adapters(f"file{index}")


def verify_checkpoint(config: TrainingConfig, folder: Path, denoiser: str = "") -> None:
    """The final export's check on a checkpoint's two files, against its resume weights."""
    family = get_family(config.family)
    prefix = f"{denoiser}." if denoiser else ""
    peft = load_file(str(folder / "lora.safetensors"))
    own = {k.removeprefix(prefix): v for k, v in peft.items() if k.startswith(prefix)}
    expected = expected_deltas(own, float(config.alpha or config.rank), config.rank)
    assert expected
    fresh = family.load(
        config.base_model, dtype=torch.float32, device=torch.device("cpu"), text_encoders=False
    )
    verify_lora_files(family, fresh, ExportedFiles.checkpoint(folder, denoiser), expected)
