"""Peak GPU memory (and s/step) per preset, on the full-size model within its GPU class's budget.

Run on a lent GPU: ``.venv/bin/python bench/memory.py [--families a,b] [--matrix] [--steps 4]``.
CPU dry run of the same path on the tiny models: ``--device cpu`` (peak RSS instead).

Each family trains at its standard resolution with the character preset's rank and its
catalogue ``quantize``, in the trainer's two phases:

1. prompt cache: the text encoder(s) and the VAE encoder alone on the GPU, encoding the empty
   prompt and 8 captions at the family's token length, and one image at the standard size;
2. training: the encoders freed, the denoiser placed by ``training.quantize.place_staged``
   (quantised layer by layer where the preset says int8/fp8), the LoRA added by
   ``start_session``, then ``--steps`` optimizer steps of ``training.loop.advance`` (gradient
   checkpointing "auto": turned on after an out-of-memory step, as in a real run).

``torch.cuda.set_per_process_memory_fraction`` caps the allocator at the GPU class's size
(gpu-24gb: 24 GiB, gpu-80gb: 80 GiB), so an H100/H200 behaves as the smaller card: a phase that
runs out of memory under the cap is reported as not fitting. ``--matrix`` runs every family
both ways the issue asks for: bf16 on 80 GiB and quantised (its preset's mode, else int8) on
24 GiB. Full-size weights are random (bench/full_size.py configs, nothing downloaded): built on
the meta device, then materialised where the phase needs them (the denoiser on the CPU first,
as the loader stages it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GPU_CLASS_GIB = {"gpu-24gb": 24, "gpu-80gb": 80}
DEFAULT_FAMILIES = (
    *("flux2-klein", "flux2-dev", "flux-dev", "sdxl"),
    *("wan22-ti2v-5b", "wan22-t2v-a14b", "ltx2"),
)
CAPTIONS = 8


@dataclass
class Outcome:
    """One family under one budget."""

    family: str
    quantize: str
    budget_gib: int
    encode_peak: float = 0.0  # GiB
    train_peak: float = 0.0
    seconds_per_step: float = 0.0
    checkpointing: bool = False
    error: str = ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, prog="bench/memory.py")
    parser.add_argument("--families", default=",".join(DEFAULT_FAMILIES))
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps")
    parser.add_argument("--matrix", action="store_true", help="bf16@80 GiB and quantised@24 GiB")
    parser.add_argument("--resolution", type=int, default=0, help="0 = the family's standard")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure each family (and budget) in a fresh allocator state; print one table."""
    import torch

    from catalogue.families import family_facts

    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device(args.device)
    runs = []
    for family in [f for f in args.families.split(",") if f]:
        facts = family_facts(family)
        plans = [(facts.quantize, GPU_CLASS_GIB.get(facts.gpu_class, 80))]
        if args.matrix:
            plans = [("none", 80), (facts.quantize if facts.quantize != "none" else "int8", 24)]
        for quantize, budget in plans:
            runs.append(measure(family, quantize, budget, device, args))
            print_row(runs[-1], device)
    return 0


def measure(
    family: str, quantize: str, budget: int, device: Any, args: argparse.Namespace
) -> Outcome:
    """Both phases of one family under a budget; out-of-memory becomes the outcome's error."""
    import torch

    outcome = Outcome(family, quantize, budget)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, budget * 2**30 / total), device)
    try:
        with tempfile.TemporaryDirectory(prefix="attune-memory-") as tmp:
            run_phases(outcome, device, args, Path(tmp))
    except torch.OutOfMemoryError as exc:
        outcome.error = f"out of memory under {budget} GiB: {str(exc).splitlines()[0][:80]}"
    return outcome


def run_phases(outcome: Outcome, device: Any, args: argparse.Namespace, tmp: Path) -> None:
    """Phase 1 (prompt cache) then phase 2 (placement, LoRA, steps), peaks recorded apart."""
    from training.loop import advance
    from training.models.base import release_memory
    from training.reporter import Reporter
    from training.trainer import start_session

    config, family = training_job(outcome, args, tmp)
    model = load(config, family, device, tmp)
    reset_peak(device)
    cache = encode_phase(config, family, model)
    outcome.encode_peak = peak_gib(device)
    family.free_encoders(model)  # production placement: quantise + move the staged denoiser
    release_memory(model)
    reset_peak(device)
    session = start_session(config, family, model, cache, tmp / "out", Reporter(config.steps, None))
    advance(session, 0)  # warm-up (and the OOM retry with checkpointing, if it comes to that)
    synchronize(device)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        advance(session, step)
    synchronize(device)
    outcome.seconds_per_step = (time.perf_counter() - started) / max(1, args.steps)
    outcome.train_peak = peak_gib(device)
    outcome.checkpointing = session.checkpointing
    del session
    release_memory(model)


def training_job(outcome: Outcome, args: argparse.Namespace, tmp: Path) -> tuple[Any, Any]:
    """The TrainingConfig of the character preset at the standard resolution, and the family."""
    from catalogue.families import family_facts
    from catalogue.presets import PRESETS
    from training.config import TrainingConfig
    from training.models import get_family

    facts = family_facts(outcome.family)
    config = TrainingConfig(
        family=outcome.family,
        base_model=str(tmp / "model"),
        steps=100_000,  # never reached: no export inside the measurement
        rank=PRESETS["character"].rank,
        resolution=args.resolution or facts.default_resolution,
        checkpoint_every=0,
        sample_every=0,
        quantize=outcome.quantize,
        mixed_precision="auto",
    )
    return config, get_family(outcome.family)


def load(config: Any, family: Any, device: Any, tmp: Path) -> Any:
    """The model as the loader leaves it: encoders on device, denoisers staged on the CPU."""
    if device.type == "cpu":
        from training.models import make_tiny

        make_tiny(config.family, tmp / "model")
        return family.load(
            config.base_model, dtype=_dtype(device), device=device, quantize=config.quantize
        )
    from bench.full_size import build_pipeline
    from training.models.base import LoadedModel

    dtype = _dtype(device)
    pipe = build_pipeline(config.family, "meta", dtype)
    staged = family.denoiser_components
    for name, module in pipe.components.items():
        if hasattr(module, "to_empty") and name != "scheduler":
            materialise(module, "cpu" if name in staged else device)
            module.requires_grad_(False)
            module.eval()
    pipe.set_progress_bar_config(disable=True)
    source = f"random:{config.family}"
    return LoadedModel(pipe, dtype, device, source, quantize=config.quantize, staged=staged)


def materialise(module: Any, device: Any) -> None:
    """Storage for a meta module: small random weights, neutral buffers (memory, not quality)."""
    import torch

    module.to_empty(device=device)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.02)
        for name, buffer in module.named_buffers():
            buffer.fill_(1.0 if name.endswith("running_var") else 0.0)


def encode_phase(config: Any, family: Any, model: Any) -> Any:
    """The prompt cache for 8 captions and one standard-size image (video: its longest clip)."""
    import torch

    from training.cache import CachedItem, LatentCache, encode_prompt_table

    captions = [f"a photo of sks, caption number {i}" for i in range(CAPTIONS)]
    table = encode_prompt_table(family, model, ["", *captions])
    side = config.resolution
    spec = family.spec
    shape = (1, 3, max(spec.frame_counts), side, side) if spec.is_video else (1, 3, side, side)
    latents = family.encode_media(model, torch.rand(shape) * 2 - 1)[0]
    item = CachedItem("bench", latents, 1, (side, side), (0, 0), (side, side))
    return LatentCache(items=[item], embeds=table, sample_embeds=[])


def _dtype(device: Any) -> Any:
    from training.trainer import precision_dtype

    return precision_dtype("auto", device)


def reset_peak(device: Any) -> None:
    """Start a phase's peak from what is allocated now."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)


def synchronize(device: Any) -> None:
    """Wait for queued GPU work (timing)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device: Any) -> float:
    """Peak allocated GiB since the last reset (peak RSS on the CPU)."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def print_row(outcome: Outcome, device: Any) -> None:
    """One line per family and budget."""
    what = "peak GiB allocated" if device.type == "cuda" else "peak RSS GiB (tiny model)"
    if outcome.error:
        result = outcome.error
    else:
        result = (
            f"encode {outcome.encode_peak:6.2f}, train {outcome.train_peak:6.2f} ({what}), "
            f"{outcome.seconds_per_step:.3f} s/step, checkpointing {outcome.checkpointing}"
        )
    label = f"{outcome.family:14} quantize={outcome.quantize:4} budget {outcome.budget_gib} GiB"
    print(f"{label}: {result}")


if __name__ == "__main__":
    raise SystemExit(main())
