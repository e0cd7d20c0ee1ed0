"""Resumable checkpoints under out_dir/checkpoints/step-000050/, rotated by a keep limit.

Each holds the LoRA weights (PEFT keys, fp32, ``<denoiser>.``-prefixed for families with several
denoisers; what resume loads), the same LoRA in both download formats, written by the final
export's writer (``lora_diffusers.safetensors`` for ``pipe.load_lora_weights`` and
``lora_comfyui.safetensors`` for ComfyUI/A1111; ``..._<denoiser>.safetensors`` per denoiser for
those families), optimizer and LR-scheduler state, RNG state, the step and which file is which
download kind (``state.json`` "downloads"). A checkpoint is written to a hidden temp folder
and renamed into place, so a process killed mid-write never leaves a half checkpoint that
resume would pick up. Rotation follows the idea of ostris/ai-toolkit's ``clean_up_saves``:
keep the newest N.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ResumeMismatch, TrainingError

if TYPE_CHECKING:
    import torch

CHECKPOINTS = "checkpoints"
_NAME_RE = re.compile(r"^step-(\d{6,})$")
_STATE = "state.json"
_LORA = "lora.safetensors"
DIFFUSERS_LORA = "lora_diffusers.safetensors"
COMFYUI_LORA = "lora_comfyui.safetensors"
_OPTIMIZER = "optimizer.pt"
_RNG = "rng.pt"
# Settings that say only how a run executes and what it writes: a resume may change these.
# Every other field changes what is learned, so a checkpoint resumes only into a run that
# has the same values (and the same data) and at least as many steps as it has done.
RUN_ONLY_FIELDS = frozenset({
    "steps", "output_name", "checkpoint_every", "keep_checkpoints", "sample_every",
    "sample_prompts", "sample_steps", "mixed_precision", "gradient_checkpointing", "compile",
    "quantize", "save_precision",
})  # fmt: skip
# What a warm start (a new run from a checkpoint's weights) needs to match: the tensor shapes.
SHAPE_FIELDS = ("family", "base_model", "rank")


@dataclass(frozen=True)
class Resumed:
    """What a loaded checkpoint restores besides the tensors loaded in place."""

    step: int
    loss: float | None
    path: Path


def checkpoint_name(step: int) -> str:
    """Zero-padded folder name, e.g. step-000050."""
    return f"step-{step:06d}"


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints under out_dir, oldest first."""
    root = out_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME_RE.match(path.name)
        if match and (path / _STATE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def save_checkpoint(
    out_dir: Path,
    step: int,
    denoisers: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    config: dict[str, Any],
    loss: float | None,
    keep: int,
    extra: Callable[[Path], dict[str, str]] | None = None,
    fingerprint: str = "",
) -> Path:
    """Write step's checkpoint atomically, then delete all but the newest ``keep``.

    ``extra(folder)`` may add files (the downloadable LoRA files) before the folder is renamed
    into place; it returns download kind -> file name, kept in state.json.
    """
    import torch
    from safetensors.torch import save_file

    root = out_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # Copies: the live tensors are views of one flat buffer, which safetensors refuses to save.
    state = _lora_tensors(denoisers)
    weights = {k: v.detach().to(torch.float32, copy=True) for k, v in state.items()}
    save_file(weights, str(tmp / _LORA))
    torch.save(
        {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()},
        tmp / _OPTIMIZER,
    )
    torch.save(_rng_state(), tmp / _RNG)
    downloads = extra(tmp) if extra is not None else {}
    state = {
        "step": step,
        "loss": loss,
        "config": config,
        "dataset_fingerprint": fingerprint,
        "downloads": downloads,
    }
    (tmp / _STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    rotate_checkpoints(out_dir, keep)
    return final


def checkpoint_downloads(folder: Path) -> dict[str, Path]:
    """Download kind ("lora", "comfyui", "lora_<denoiser>"...) -> file of a checkpoint folder.

    A checkpoint written before state.json named its downloads offers its diffusers file only.
    """
    names = read_state(folder).get("downloads") or {"lora": DIFFUSERS_LORA}
    return {kind: folder / name for kind, name in names.items() if (folder / name).is_file()}


def rotate_checkpoints(out_dir: Path, keep: int) -> None:
    """Delete the oldest complete checkpoints beyond ``keep`` and stale temp folders."""
    for old in list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    root = out_dir / CHECKPOINTS
    for stale in root.glob(".step-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def load_checkpoint(
    path: Path,
    denoisers: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    config: dict[str, Any],
    fingerprint: str = "",
) -> Resumed:
    """Restore LoRA weights, optimizer, scheduler and RNG in place.

    ResumeMismatch, before anything is restored, when the checkpoint was trained with other
    settings (beyond ``RUN_ONLY_FIELDS``), on other data (``fingerprint``) or for more steps.
    """
    import torch

    state = read_state(path)
    differences = resume_differences(state, config, fingerprint)
    if differences:
        raise ResumeMismatch(str(path), differences)
    device = load_lora_weights(path, denoisers, state["config"], config)
    saved = torch.load(path / _OPTIMIZER, map_location=device, weights_only=True)
    try:
        optimizer.load_state_dict(saved["optimizer"])
    except ValueError as exc:  # e.g. written before the LoRA moved into one flat parameter
        raise TrainingError(
            f"{path} holds optimizer state this trainer cannot resume ({exc}); "
            "use a fresh output folder"
        ) from exc
    lr_scheduler.load_state_dict(saved["lr_scheduler"])
    _restore_rng(torch.load(path / _RNG, weights_only=True))
    return Resumed(step=int(state["step"]), loss=state.get("loss"), path=path)


def resume_differences(
    state: dict[str, Any], config: dict[str, Any], fingerprint: str
) -> dict[str, tuple[object, object]]:
    """Field -> (checkpoint's, run's) for what keeps a checkpoint from resuming into a run."""
    saved = state["config"]
    # A field the checkpoint predates ran at what is now its default; it is not compared.
    names = sorted((set(saved) & set(config)) - RUN_ONLY_FIELDS)
    differences = {n: (saved.get(n), config.get(n)) for n in names if saved.get(n) != config.get(n)}
    if int(config.get("steps", 0)) < int(state["step"]):
        differences["steps"] = (state["step"], config.get("steps"))
    recorded = state.get("dataset_fingerprint")
    if recorded and fingerprint and recorded != fingerprint:
        differences["dataset"] = (f"fingerprint {recorded[:12]}", f"fingerprint {fingerprint[:12]}")
    return differences


def load_lora_weights(
    path: Path,
    denoisers: dict[str, torch.nn.Module],
    saved_config: dict[str, Any],
    config: dict[str, Any],
) -> torch.device:
    """Load a checkpoint's LoRA weights in place (a resume, or a new run started from it).

    TrainingError when its shapes cannot fit (another family, base model or rank) or weights
    are missing. Returns the device the LoRA lives on.
    """
    from safetensors.torch import load_file

    for name in SHAPE_FIELDS:
        if saved_config.get(name) != config.get(name):
            raise TrainingError(
                f"{path} was written with {name}={saved_config.get(name)!r}, this run has "
                f"{name}={config.get(name)!r}; its weights do not fit"
            )
    device = next(p.device for p in next(iter(denoisers.values())).parameters())
    missing = _restore_lora(denoisers, load_file(str(path / _LORA), device=str(device)))
    if missing:
        raise TrainingError(f"{path} lacks LoRA weights for {missing[:3]}")
    return device


def read_state(path: Path) -> dict[str, Any]:
    """A checkpoint folder's state.json: step, loss, config, dataset fingerprint, downloads."""
    return json.loads((path / _STATE).read_text(encoding="utf-8"))


def _lora_tensors(denoisers: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """PEFT state dicts of every denoiser in one dict, keys prefixed by the denoiser's name."""
    from peft import get_peft_model_state_dict

    tensors = {}
    for name, denoiser in denoisers.items():
        prefix = f"{name}." if name else ""
        for key, value in get_peft_model_state_dict(denoiser).items():
            tensors[prefix + key] = value
    return tensors


def _restore_lora(denoisers: dict[str, torch.nn.Module], tensors: dict[str, Any]) -> list[str]:
    """Load each denoiser's part of ``tensors`` in place; the LoRA keys that were missing."""
    from peft import set_peft_model_state_dict

    missing = []
    for name, denoiser in denoisers.items():
        prefix = f"{name}." if name else ""
        own = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        result = set_peft_model_state_dict(denoiser, own)
        missing += [prefix + k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    return missing


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
