"""Training speed per family: our loop against the plain diffusers-example loop, same process.

Run: .venv/bin/python -m training bench [--device cpu|cuda] [--families a,b] [--steps N]
(or .venv/bin/python bench/train_speed.py ...).

Each family trains at its standard resolution (and, for video, its longest clip) with the
default TrainingConfig (rank 16, batch 1). On a GPU the models are the full-size architectures
built from the published configs with random weights (bench/full_size.py, no download); on the
CPU they are the families' tiny models. Two loops train the same job:

* ours: ``training.loop.advance`` on a session from ``training.trainer.start_session`` after
  ``cache_latents`` (cached latents and text embeddings, fused AdamW, the trainer's settings);
* reference: the diffusers DreamBooth LoRA example recipe: every step loads and resizes the
  images, runs the VAE encoder and the text encoders, then the same loss; LoRA in fp32, plain
  ``torch.optim.AdamW``, ``loss.item()`` every step as its progress bar does.

Steps are interleaved in blocks (ours, reference, reference, ours, ...) so machine noise hits
both alike; the table shows medians of per-step time, samples/s, peak memory, FLOPs of one real
step counted with ``torch.utils.flop_counter`` and MFU, and the ours/reference speed ratio.
On a GPU both loops share one denoiser (two LoRA adapters, switched per block) because two
full-size copies do not fit; on the CPU each has its own pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reference_loop import build_reference, write_dataset  # noqa: E402

FULL_SIZE = (
    *("sd15", "sdxl", "flux-dev", "wan21-t2v-1.3b", "qwen-image", "z-image"),
    *("flux2-klein", "flux2-dev"),
    *("wan22-ti2v-5b", "wan22-t2v-a14b", "ltx2"),
)
# Dense bf16 tensor-core peaks (TFLOP/s) by device name; fp32 runs use TF32 (half of these).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}


@dataclass
class LoopStats:
    """Measurements of one loop."""

    name: str
    seconds: list[float] = field(default_factory=list)  # per-step time of each block
    cpu_seconds: list[float] = field(default_factory=list)  # per-step process CPU time
    peak_bytes: int = 0
    flops: float = 0.0

    @property
    def median(self) -> float:
        """Median seconds per step."""
        return statistics.median(self.seconds)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m training bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--families", default="", help="comma list (default: per device)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per loop")
    parser.add_argument("--block", type=int, default=0, help="steps per interleaved block")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per loop first")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--images", type=int, default=4, help="dataset size")
    parser.add_argument("--source-scale", type=float, default=2.0, help="source/train size")
    parser.add_argument("--resolution", type=int, default=0, help="0 = standard")
    parser.add_argument("--frames", type=int, default=0, help="video clip length, 0 = standard")
    parser.add_argument("--threads", type=int, default=0, help="torch threads, 0 = default")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument(
        "--quantize", choices=("none", "int8", "fp8", "preset"), default="none",
        help="frozen base weights; 'preset' = the family's catalogue setting",
    )  # fmt: skip
    parser.add_argument("--shared", action="store_true", help="one pipeline for both (GPU way)")
    parser.add_argument("--compile", action="store_true", help="our loop with compile=True")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="for MFU; 0 = guess")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Benchmark each family and print one table per family."""
    import torch

    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.threads:  # one setting for the whole process: both loops run under it
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    families = [f for f in args.families.split(",") if f] or (
        list(FULL_SIZE) if device.type == "cuda" else ["tiny-sd"]
    )
    args.steps = args.steps or (20 if device.type == "cuda" else 200)
    args.block = args.block or (5 if device.type == "cuda" else 1)
    peak = args.peak_tflops * 1e12 or peak_flops(device)
    print(describe(device, peak))
    for family in families:
        run_family(family, device, args, peak)
    return 0


def run_family(family: str, device: Any, args: argparse.Namespace, peak: float) -> None:
    """Build both loops for one family, warm up, count FLOPs, time interleaved, print."""
    with tempfile.TemporaryDirectory(prefix="attune-bench-") as tmp:
        started = time.monotonic()
        config, data = job(family, device, args, Path(tmp))
        shared = device.type == "cuda" or args.shared
        ours, ref = build_loops(config, data, device, Path(tmp) / "out", shared)
        setup = time.monotonic() - started
        for _ in range(args.warmup):
            for loop in (ref, ours):
                loop.activate()
                loop.step()
        for loop in (ours, ref):
            loop.stats.flops = count_flops(loop)
        rounds = max(1, args.steps // args.block)
        for index in range(rounds):
            for loop in (ours, ref) if index % 2 == 0 else (ref, ours):
                time_block(loop, args.block, device)
        report(family, config, ours.stats, ref.stats, device, peak, setup)
        if ours.checkpointing() or ref.checkpointing():
            print(
                f"gradient checkpointing after an out-of-memory step: ours {ours.checkpointing()}, "
                f"reference {ref.checkpointing()} (a shared denoiser runs both with it then)"
            )


@dataclass
class Loop:
    """One training loop under test: a step function and how to make its adapter active."""

    name: str
    advance: Callable[[int], object]
    activate: Callable[[], None]
    stats: LoopStats
    done: int = 0
    checkpointing: Callable[[], bool] = lambda: False  # gradient checkpointing turned on?

    def step(self) -> None:
        """Run the next step."""
        self.advance(self.done)
        self.done += 1


def job(family: str, device: Any, args: argparse.Namespace, tmp: Path) -> tuple[Any, Path]:
    """The TrainingConfig and a synthetic dataset at the family's standard size."""
    from catalogue.families import family_facts
    from training.config import TrainingConfig
    from training.models import get_family

    spec = get_family(family).spec
    tiny = device.type != "cuda"
    resolution = args.resolution or (
        spec.default_resolution if not tiny or family == "tiny-sd" else spec.min_resolution
    )
    frames = args.frames or (17 if tiny else max(spec.frame_counts)) if spec.is_video else 0
    base = f"builtin:{family}" if tiny else f"random:{family}"
    config = TrainingConfig(
        family=family,
        base_model=base,
        steps=100_000,  # never reached: no final checkpoint or export inside the timing
        rank=args.rank,
        batch_size=args.batch_size,
        resolution=resolution,
        checkpoint_every=0,
        sample_every=0,
        trigger_word="sks",
        mixed_precision=args.precision,
        compile=args.compile,
        quantize=family_facts(family).quantize if args.quantize == "preset" else args.quantize,
    )
    source = round(resolution * args.source_scale)
    data = write_dataset(tmp / "data", spec, max(args.images, args.batch_size), source, frames)
    return config, data


def build_loops(config: Any, data: Path, device: Any, out: Path, shared: bool) -> tuple[Loop, Loop]:
    """Our session (cache + start_session) and the reference loop on the same job.

    shared: one pipeline for both (two adapters on one denoiser), as on a GPU; else two.
    """
    from training.cache import cache_latents
    from training.data.dataset import prepare_data
    from training.loop import advance
    from training.models import get_family
    from training.reporter import Reporter
    from training.trainer import prepare_backends, start_session

    prepare_backends(device)
    family = get_family(config.family)
    prepared = prepare_data(config, data)
    model = load_model(config, device)
    pipe = model.pipeline
    encoders = {name: getattr(pipe, name, None) for name in ENCODERS}
    vae_encoder = pipe.vae.encoder
    cache = cache_latents(family, model, prepared, [])
    session = start_session(config, family, model, cache, out, Reporter(config.steps, None))
    if shared:  # give the pipeline back the encoders caching freed, for the reference
        for name, module in encoders.items():
            setattr(pipe, name, module)
        pipe.vae.encoder = vae_encoder
        reference = build_reference(config, family, model, prepared, adapter="reference")
    else:
        reference = build_reference(
            config, family, load_model(config, device), prepared, adapter="default"
        )
    ours = Loop(
        "ours", lambda step: advance(session, step), lambda: activate(session), LoopStats("ours")
    )
    ref = Loop("reference", reference.step, reference.activate, LoopStats("reference"))
    ours.checkpointing = lambda: session.checkpointing
    ref.checkpointing = lambda: reference.checkpointing
    return ours, ref


ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")


def load_model(config: Any, device: Any) -> Any:
    """Full-size random weights on a GPU, the family's tiny model on the CPU."""
    from bench.full_size import build_loaded
    from training.trainer import load_family, precision_dtype

    if device.type == "cuda":
        from training.models import get_family
        from training.quantize import quantize_frozen

        model = build_loaded(config.family, device, precision_dtype(config.mixed_precision, device))
        for name in get_family(config.family).denoiser_components:
            quantize_frozen(getattr(model.pipeline, name), config.quantize, device)
        model.quantize = config.quantize
        return model
    return load_family(config, device)[1]


def activate(session: Any) -> None:
    """Make our adapter the active one (matters only when the denoiser is shared)."""
    import torch

    from training.lora_params import keep_lora_inputs

    for denoiser in session.family.denoisers(session.model).values():
        if len(getattr(denoiser, "peft_config", {})) > 1:
            denoiser.set_adapter("default")
            if session.model.dtype != torch.float32:
                keep_lora_inputs(denoiser)  # the reference turned PEFT's input casting back on


def time_block(loop: Loop, count: int, device: Any) -> None:
    """Run count steps of one loop; record seconds per step and peak memory."""
    import torch

    loop.activate()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count):
        loop.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        loop.stats.peak_bytes = max(loop.stats.peak_bytes, torch.cuda.max_memory_allocated())
    loop.stats.seconds.append((time.perf_counter() - started) / count)
    loop.stats.cpu_seconds.append((time.process_time() - cpu_started) / count)


def count_flops(loop: Loop) -> float:
    """FLOPs of one real step (forward, backward, optimizer) by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    loop.activate()
    with FlopCounterMode(display=False) as counter:
        loop.step()
    return float(counter.get_total_flops())


def peak_flops(device: Any) -> float:
    """Dense peak FLOP/s: the GPU's published bf16 figure, or a measured fp32 GEMM on CPU."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12
        return measured_gemm(device, torch.bfloat16)
    return measured_gemm(device, torch.float32)


def measured_gemm(device: Any, dtype: Any, size: int = 1024) -> float:
    """Best-of-5 FLOP/s of a square matmul: a practical roofline where no spec sheet applies."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def describe(device: Any, peak: float) -> str:
    """One header line about the machine."""
    import platform

    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        where = f"{name}, peak {peak / 1e12:.0f} TFLOP/s bf16 dense"
    else:
        where = (
            f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
            f"MFU against a measured fp32 GEMM of {peak / 1e9:.1f} GFLOP/s"
        )
    return f"torch {torch.__version__} on {where}"


def report(
    family: str,
    config: Any,
    ours: LoopStats,
    ref: LoopStats,
    device: Any,
    peak: float,
    setup: float,
) -> None:
    """Print both loops side by side and the ratio (medians, and best blocks for reference)."""
    kind = "full-size, random weights" if device.type == "cuda" else "tiny model"
    print(
        f"\n{family} ({kind}) at {config.resolution}px, batch {config.batch_size}, "
        f"rank {config.rank}, {len(ours.seconds)} timed blocks per loop (setup {setup:.0f} s)"
    )
    header = ("loop", "s/step", "best", "samples/s", "peak mem", "GFLOP/step", "MFU")
    print("{:10} {:>9} {:>9} {:>10} {:>10} {:>11} {:>7}".format(*header))
    for stats in (ours, ref):
        memory = f"{stats.peak_bytes / 2**30:.2f} GiB" if stats.peak_bytes else "n/a"
        mfu = stats.flops / stats.median / peak
        print(
            f"{stats.name:10} {stats.median:9.4f} {min(stats.seconds):9.4f} "
            f"{config.batch_size / stats.median:10.2f} {memory:>10} "
            f"{stats.flops / 1e9:11.2f} {mfu:7.2%}"
        )
    best = min(ref.seconds) / min(ours.seconds)
    print(f"ours/reference speed: {ref.median / ours.median:.2f}x (medians), {best:.2f}x (best)")
    if device.type == "cpu":
        cpu = statistics.median(ref.cpu_seconds) / statistics.median(ours.cpu_seconds)
        print(
            f"ours/reference CPU time per step: {cpu:.2f}x (medians of process CPU time: steadier "
            "than wall time on a shared machine; counts every torch thread)"
        )
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
        print(f"process peak RSS so far {rss:.0f} MiB (both loops; CPU memory is not per loop)")


if __name__ == "__main__":
    raise SystemExit(main())
