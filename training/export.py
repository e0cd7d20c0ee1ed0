"""Export the trained LoRA in two layouts and prove both load back completely.

Saving follows diffusers ``examples/dreambooth/train_dreambooth_lora_sdxl.py`` (diffusers 0.42):
unwrap, cast to fp32, ``get_peft_model_state_dict``, ``convert_state_dict_to_diffusers``, the
pipeline class's ``save_lora_weights``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.checkpoints import DIFFUSERS_LORA
from training.config import TrainingConfig
from training.errors import ExportError
from training.lora_files import save_with_metadata
from training.models.base import Family, LoadedModel

if TYPE_CHECKING:
    import torch

LORA_DIR = "lora"
# convert_state_dict_to_diffusers renames attention projections to .lora.down/.lora.up but
# leaves other modules (FLUX ff.*, proj_mlp; Wan ffn.*) in PEFT's .lora_A/.lora_B spelling.
_SPELLINGS = ((".lora.down.weight", ".lora.up.weight"), (".lora_A.weight", ".lora_B.weight"))


@dataclass(frozen=True)
class ExportedFiles:
    """Paths of the two LoRA files of one denoiser."""

    diffusers: Path
    comfyui: Path
    denoiser: str = ""  # key of Family.denoisers ("" for families with one)


def file_stem(name: str, denoiser: str) -> str:
    """File stem of a LoRA file: the name, plus ``_<denoiser>`` when the family has several."""
    return f"{name}_{denoiser}" if denoiser else name


def lora_state_dict(
    family: Family, model: LoadedModel, denoiser: str = ""
) -> dict[str, torch.Tensor]:
    """One denoiser's LoRA weights with diffusers key names, fp32, on the CPU."""
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    denoiser = family.denoisers(model)[denoiser]
    denoiser = getattr(denoiser, "_orig_mod", denoiser)  # whole-model torch.compile wrapper
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(denoiser))
    # Copies: the live tensors are views of one flat buffer, which safetensors refuses to save.
    return {k: v.detach().to("cpu", torch.float32, copy=True) for k, v in state.items()}


def lora_metadata(
    config: TrainingConfig, steps_done: int, fingerprint: str, denoiser: str = ""
) -> dict[str, str]:
    """Header metadata written into both files (strings only, as safetensors requires)."""
    expert = {"attune.denoiser": denoiser} if denoiser else {}
    return {
        **expert,
        "attune.family": config.family,
        "attune.base_model": config.base_model,
        "attune.trigger_word": config.trigger_word,
        "attune.rank": str(config.rank),
        "attune.alpha": f"{config.alpha:g}",
        "attune.steps": str(steps_done),
        "attune.resolution": str(config.resolution),
        "attune.dataset_fingerprint": fingerprint,
        "attune.config": config.to_json(),
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(config.rank),
        "ss_network_alpha": f"{config.alpha:g}",
        "ss_output_name": config.output_name,
    }


def write_lora_files(
    family: Family,
    model: LoadedModel,
    state: dict[str, torch.Tensor],
    out_dir: Path,
    config: TrainingConfig,
    metadata: dict[str, str],
    denoiser: str = "",
) -> ExportedFiles:
    """out_dir/lora/<stem>.safetensors (diffusers) and <stem>_comfyui.safetensors (kohya)."""
    folder = out_dir / LORA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = file_stem(config.output_name, denoiser)
    files = ExportedFiles(
        diffusers=folder / f"{stem}.safetensors",
        comfyui=folder / f"{stem}_comfyui.safetensors",
        denoiser=denoiser,
    )
    try:
        family.save_lora(model, state, files.diffusers, metadata)
        kohya = family.to_kohya(state, float(config.alpha))
        save_with_metadata(kohya, files.comfyui, {"format": "pt", **metadata})
    except (OSError, ValueError) as exc:
        raise ExportError(f"could not write LoRA files to {folder}: {exc}") from exc
    return files


def write_checkpoint_lora(
    family: Family,
    model: LoadedModel,
    folder: Path,
    config: TrainingConfig,
    step: int,
    fingerprint: str,
) -> list[Path]:
    """folder/lora_diffusers.safetensors (one per denoiser): the LoRA as of ``step``."""
    paths = []
    for denoiser in family.denoisers(model):
        path = folder / f"{file_stem(Path(DIFFUSERS_LORA).stem, denoiser)}.safetensors"
        metadata = lora_metadata(config, step, fingerprint, denoiser)
        try:
            family.save_lora(model, lora_state_dict(family, model, denoiser), path, metadata)
        except (OSError, ValueError) as exc:
            raise ExportError(f"could not write {path}: {exc}") from exc
        paths.append(path)
    return paths


def expected_deltas(
    state: dict[str, torch.Tensor], alpha: float, rank: int
) -> dict[str, torch.Tensor]:
    """Module name -> the weight change it should get: up @ down * alpha / rank."""
    deltas = {}
    for key, down in state.items():
        for down_suffix, up_suffix in _SPELLINGS:
            if key.endswith(down_suffix):
                module = key.removesuffix(down_suffix)
                up = state[module + up_suffix]
                deltas[module] = (up.flatten(1) @ down.flatten(1)) * (alpha / rank)
    return deltas


def verify_lora_files(
    family: Family,
    fresh: LoadedModel,
    files: ExportedFiles,
    expected: dict[str, torch.Tensor],
) -> None:
    """Load each file into a fresh pipeline; ExportError names modules missed or mismatched."""
    for index, path in enumerate((files.diffusers, files.comfyui)):
        adapter = f"verify_{index}"
        try:
            missed = family.load_lora_check(fresh, path, adapter, set(expected), files.denoiser)
        # diffusers' FLUX kohya converter checks layer widths with assert.
        except (ValueError, KeyError, RuntimeError, AssertionError) as exc:
            raise ExportError(f"{path.name} does not load with diffusers: {exc}") from exc
        if missed:
            raise ExportError(f"{path.name} left LoRA weights unloaded", missed)
        wrong = _mismatched(family.denoisers(fresh)[files.denoiser], adapter, expected)
        if wrong:
            raise ExportError(f"{path.name} loaded different weights for", wrong)
        fresh.pipeline.delete_adapters(adapter)


def _mismatched(
    denoiser: torch.nn.Module, adapter: str, expected: dict[str, torch.Tensor]
) -> list[str]:
    import torch

    wrong = []
    for name, delta in expected.items():
        module = denoiser.get_submodule(name)
        down = module.lora_A[adapter].weight.float().flatten(1).cpu()
        up = module.lora_B[adapter].weight.float().flatten(1).cpu()
        loaded = up @ down * module.scaling[adapter]
        if torch.linalg.norm(loaded - delta) > 2e-2 * torch.linalg.norm(delta) + 1e-6:
            wrong.append(name)
    return wrong
