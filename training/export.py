"""Export the trained LoRA in two layouts and prove both load back completely.

Saving follows diffusers ``examples/dreambooth/train_dreambooth_lora_sdxl.py`` (diffusers 0.42):
unwrap, cast to fp32, ``get_peft_model_state_dict``, ``convert_state_dict_to_diffusers``, the
pipeline class's ``save_lora_weights``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from catalogue.families import TINY_SOURCE_PREFIX, family_facts
from training.checkpoints import COMFYUI_LORA, DIFFUSERS_LORA
from training.config import TrainingConfig
from training.errors import ExportError
from training.lora_files import save_with_metadata
from training.models.base import Family, LoadedModel

if TYPE_CHECKING:
    import torch

LORA_DIR = "lora"
MODELSPEC_VERSION = "1.0.1"  # Stability-AI/ModelSpec, as kohya-ss/sd-scripts writes it
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# convert_state_dict_to_diffusers renames attention projections to .lora.down/.lora.up but
# leaves other modules (FLUX ff.*, proj_mlp; Wan ffn.*) in PEFT's .lora_A/.lora_B spelling.
_SPELLINGS = ((".lora.down.weight", ".lora.up.weight"), (".lora_A.weight", ".lora_B.weight"))


@dataclass(frozen=True)
class ExportedFiles:
    """Paths of the two LoRA files of one denoiser."""

    diffusers: Path
    comfyui: Path
    denoiser: str = ""  # key of Family.denoisers ("" for families with one)

    @classmethod
    def final(cls, out_dir: Path, output_name: str, denoiser: str = "") -> ExportedFiles:
        """out_dir/lora/<stem>.safetensors and <stem>_comfyui.safetensors."""
        stem = file_stem(output_name, denoiser)
        folder = out_dir / LORA_DIR
        return cls(folder / f"{stem}.safetensors", folder / f"{stem}_comfyui.safetensors", denoiser)

    @classmethod
    def checkpoint(cls, folder: Path, denoiser: str = "") -> ExportedFiles:
        """folder/lora_diffusers[_<denoiser>].safetensors and lora_comfyui[_<denoiser>]...."""
        return cls(
            folder / f"{file_stem(Path(DIFFUSERS_LORA).stem, denoiser)}.safetensors",
            folder / f"{file_stem(Path(COMFYUI_LORA).stem, denoiser)}.safetensors",
            denoiser,
        )


def download_kinds(exported: list[ExportedFiles]) -> dict[str, str]:
    """Download kind -> file: "lora"/"comfyui", with "_<denoiser>" for each of several."""
    kinds = {}
    for files in exported:
        suffix = f"_{files.denoiser}" if files.denoiser else ""
        kinds[f"lora{suffix}"] = str(files.diffusers)
        kinds[f"comfyui{suffix}"] = str(files.comfyui)
    return kinds


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
    """Header metadata written into both files (strings only, as safetensors requires).

    ModelSpec (``modelspec.*``, as kohya's trainers write it) and kohya's ``ss_*`` keys let
    A1111/Forge, Civitai and ComfyUI managers classify the file; ``attune.*`` records the run.
    No local path goes in: a base model or adapter loaded from a folder is named by its hub id.
    """
    facts = family_facts(config.family)
    shared = shareable_config(config)
    expert = {"attune.denoiser": denoiser} if denoiser else {}
    trigger = {"modelspec.trigger_phrase": config.trigger_word} if config.trigger_word else {}
    return {
        "modelspec.sai_model_spec": MODELSPEC_VERSION,
        "modelspec.architecture": f"{facts.architecture}/lora",
        "modelspec.implementation": facts.implementation,
        "modelspec.title": file_stem(config.output_name, denoiser),
        "modelspec.resolution": f"{config.resolution}x{config.resolution}",
        "modelspec.date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        **trigger,
        **expert,
        "attune.family": config.family,
        "attune.base_model": shared.base_model,
        "attune.trigger_word": config.trigger_word,
        "attune.rank": str(config.rank),
        "attune.alpha": f"{config.alpha:g}",
        "attune.steps": str(steps_done),
        "attune.resolution": str(config.resolution),
        "attune.dataset_fingerprint": fingerprint,
        "attune.config": shared.to_json(),
        "ss_base_model_version": facts.base_model_version,
        "ss_network_dim": str(config.rank),
        "ss_network_alpha": f"{config.alpha:g}",
        "ss_output_name": config.output_name,
    }


def shareable_config(config: TrainingConfig) -> TrainingConfig:
    """The config with sources loaded from local folders replaced by what they stand for.

    A header travels with the file to other people: it names the published base model (or
    ``tiny:<family>``), never a folder on the machine that trained it.
    """
    facts = family_facts(config.family)
    changes = {}
    if is_local_source(config.base_model):
        changes["base_model"] = facts.default_source
    if is_local_source(config.training_adapter):
        changes["training_adapter"] = ""  # the family's published adapter stands for it
    return config.replace(**changes) if changes else config


def is_local_source(source: str) -> bool:
    """True for a folder or file path, False for a hub id ("owner/name"), "none" and ""."""
    if not source or source == "none" or source.startswith(TINY_SOURCE_PREFIX):
        return False
    return Path(source).exists() or not _HUB_ID.match(source)


def write_lora_files(
    family: Family,
    model: LoadedModel,
    state: dict[str, torch.Tensor],
    files: ExportedFiles,
    config: TrainingConfig,
    metadata: dict[str, str],
) -> ExportedFiles:
    """Write ``files``: the diffusers/PEFT file and the ComfyUI/A1111 (native or kohya) file.

    Tensors in ``config.save_precision`` (bf16 by default: half the size, and what the base
    models run in); the resume state in checkpoints stays fp32.
    """
    import torch

    dtype = torch.float32 if config.save_precision == "fp32" else torch.bfloat16
    alpha = float(config.alpha or config.rank)
    network = family_facts(config.family).network_module
    comfyui_only = {"ss_network_module": network} if network else {}
    files.diffusers.parent.mkdir(parents=True, exist_ok=True)
    try:
        family.save_lora(
            model, {k: v.to(dtype) for k, v in state.items()}, files.diffusers, metadata
        )
        comfyui = {k: v.to(dtype) for k, v in family.to_kohya(state, alpha).items()}
        save_with_metadata(comfyui, files.comfyui, {"format": "pt", **metadata, **comfyui_only})
    except (OSError, ValueError) as exc:
        raise ExportError(f"could not write LoRA files to {files.diffusers.parent}: {exc}") from exc
    return files


def write_checkpoint_lora(
    family: Family,
    model: LoadedModel,
    folder: Path,
    config: TrainingConfig,
    step: int,
    fingerprint: str,
) -> list[ExportedFiles]:
    """Both LoRA files of each denoiser as of ``step`` into a checkpoint folder.

    The same writer and metadata as the final export, so a checkpoint downloads in either
    format and loads wherever the final files do.
    """
    written = []
    for denoiser in family.denoisers(model):
        state = lora_state_dict(family, model, denoiser)
        metadata = lora_metadata(config, step, fingerprint, denoiser)
        files = ExportedFiles.checkpoint(folder, denoiser)
        written.append(write_lora_files(family, model, state, files, config, metadata))
    return written


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
    """Prove both files apply ``expected``; ExportError (never without a message) says how not.

    The ComfyUI file is read back through the family's own key map (``comfyui_module``), as
    ComfyUI applies it; then, like the diffusers file, it is loaded into a fresh pipeline with
    diffusers' ``load_lora_weights``, except where diffusers' converter cannot handle the
    model's shape (``Family.diffusers_reads_comfyui``).
    """
    check_comfyui_file(family, files.comfyui, expected)
    loaders = [files.diffusers]
    if family.diffusers_reads_comfyui(fresh):
        loaders.append(files.comfyui)
    for index, path in enumerate(loaders):
        adapter = f"verify_{index}"
        try:
            missed = family.load_lora_check(fresh, path, adapter, set(expected), files.denoiser)
        # diffusers' converters check layer widths with bare asserts.
        except (ValueError, KeyError, RuntimeError, AssertionError) as exc:
            raise ExportError(f"{path.name} does not load with diffusers: {describe(exc)}") from exc
        if missed:
            raise ExportError(f"{path.name} left LoRA weights unloaded", missed)
        wrong = _mismatched(family.denoisers(fresh)[files.denoiser], adapter, expected)
        if wrong:
            raise ExportError(f"{path.name} loaded different weights for", wrong)
        fresh.pipeline.delete_adapters(adapter)


def check_comfyui_file(family: Family, path: Path, expected: dict[str, torch.Tensor]) -> None:
    """ExportError unless the file's keys map one to one onto ``expected``'s modules and apply
    each one's weight change (alpha read from the tensors, as ComfyUI reads it)."""
    from safetensors.torch import load_file

    from training.models.native_lora import native_deltas

    rows = {module: delta.shape[0] for module, delta in expected.items()}
    try:
        tensors = load_file(str(path))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path.name} cannot be read: {describe(exc)}") from exc
    got, problems = native_deltas(tensors, rows, family.comfyui_module, family.comfyui_prefix)
    if problems:
        raise ExportError(f"{path.name} does not match the ComfyUI key map", problems)
    missing = sorted(set(expected) - set(got))
    if missing:
        raise ExportError(f"{path.name} left LoRA weights unloaded", missing)
    wrong = [name for name, delta in expected.items() if not _close(got[name], delta)]
    if wrong:
        raise ExportError(f"{path.name} applies different weights for", wrong)


def describe(exc: BaseException) -> str:
    """An exception as text that is never empty: its message, else its type and where."""
    import traceback

    message = str(exc).strip()
    if message:
        return message
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def _close(loaded: torch.Tensor, delta: torch.Tensor) -> bool:
    import torch

    loaded, delta = loaded.float().cpu(), delta.float().cpu()
    if loaded.shape != delta.shape:
        return False
    return bool(torch.linalg.norm(loaded - delta) <= 2e-2 * torch.linalg.norm(delta) + 1e-6)


def _mismatched(
    denoiser: torch.nn.Module, adapter: str, expected: dict[str, torch.Tensor]
) -> list[str]:
    wrong = []
    for name, delta in expected.items():
        module = denoiser.get_submodule(name)
        down = module.lora_A[adapter].weight.float().flatten(1).cpu()
        up = module.lora_B[adapter].weight.float().flatten(1).cpu()
        if not _close(up @ down * module.scaling[adapter], delta):
            wrong.append(name)
    return wrong
