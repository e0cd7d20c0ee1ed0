"""Resumable checkpoints under out_dir/checkpoints/step-000050/, rotated by a keep limit.

Each holds the LoRA weights (PEFT keys, fp32, ``<denoiser>.``-prefixed for families with several
denoisers; what resume loads), the same LoRA in diffusers format (``lora_diffusers.safetensors``,
one ``lora_diffusers_<denoiser>.safetensors`` per denoiser for those families; loadable with
``pipe.load_lora_weights``; what users download), optimizer and LR-scheduler state, RNG state
and the step. A checkpoint is written to a hidden temp folder and renamed into place, so a
process killed mid-write never leaves a half checkpoint that resume would pick up. Rotation
follows the idea of ostris/ai-toolkit's ``clean_up_saves``: keep the newest N.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import TrainingError

if TYPE_CHECKING:
    import torch

CHECKPOINTS = "checkpoints"
_NAME_RE = re.compile(r"^step-(\d{6,})$")
_STATE = "state.json"
_LORA = "lora.safetensors"
DIFFUSERS_LORA = "lora_diffusers.safetensors"  # the web app's download points at this name
_OPTIMIZER = "optimizer.pt"
_RNG = "rng.pt"
# Fields that change tensor shapes or the model: a checkpoint from a run that differs in these
# cannot be resumed.
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
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write step's checkpoint atomically, then delete all but the newest ``keep``.

    ``extra(folder)`` may add files (the diffusers LoRA) before the folder is renamed into place.
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
    state = {"step": step, "loss": loss, "config": config}
    if extra is not None:
        extra(tmp)
    (tmp / _STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    rotate_checkpoints(out_dir, keep)
    return final


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
) -> Resumed:
    """Restore LoRA weights, optimizer, scheduler and RNG in place; check the config matches."""
    import torch
    from safetensors.torch import load_file

    state = json.loads((path / _STATE).read_text(encoding="utf-8"))
    for name in SHAPE_FIELDS:
        if state["config"].get(name) != config.get(name):
            raise TrainingError(
                f"{path} was written with {name}={state['config'].get(name)!r}, this run has "
                f"{name}={config.get(name)!r}; use a fresh output folder"
            )
    device = next(p.device for p in next(iter(denoisers.values())).parameters())
    missing = _restore_lora(denoisers, load_file(str(path / _LORA), device=str(device)))
    if missing:
        raise TrainingError(f"{path} lacks LoRA weights for {missing[:3]}")
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
