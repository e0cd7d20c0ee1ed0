"""Command line: train, make-tiny, plan (and bench when bench code is present)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from training.errors import TrainingError


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("train", help="train a LoRA")
    run.add_argument("--config", type=Path, required=True, help="JSON of TrainingConfig fields")
    run.add_argument("--data", type=Path, required=True, help="dataset folder")
    run.add_argument("--out", type=Path, required=True, help="output folder (resumes if reused)")
    run.add_argument(
        "--from-checkpoint",
        type=Path,
        help="a checkpoint folder: start a new run from its LoRA weights with this config",
    )

    tiny = commands.add_parser("make-tiny", help="write a family's tiny random model")
    tiny.add_argument("family")
    tiny.add_argument("out", type=Path)

    plan = commands.add_parser("plan", help="print what each dataset file becomes")
    plan.add_argument("--family", required=True)
    plan.add_argument("--resolution", type=int, default=0)
    plan.add_argument("--json", action="store_true", help="one JSON object per line")
    plan.add_argument("data", type=Path)

    bench = commands.add_parser(
        "bench", help="run bench/train_speed.py when present", add_help=False
    )  # its own -h/--help and options go through to the bench
    bench.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "bench":  # argparse.REMAINDER skips leading --options; pass them on
        args.args = unknown + args.args
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    handlers = {"train": _train, "make-tiny": _make_tiny, "plan": _plan, "bench": _bench}
    try:
        return handlers[args.command](args)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    from training.config import TrainingConfig
    from training.errors import ConfigError
    from training.trainer import train

    try:
        data = json.loads(args.config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("config", f"cannot read {args.config}: {exc}") from exc
    config = TrainingConfig.from_dict(data)

    def show(event: object) -> None:
        print(json.dumps(event.to_dict()), flush=True)  # type: ignore[attr-defined]

    result = train(config, args.data, args.out, on_progress=show, start_from=args.from_checkpoint)
    print(json.dumps({"result": result.to_dict()}), flush=True)
    return 0


def _make_tiny(args: argparse.Namespace) -> int:
    from training.models import make_tiny

    print(make_tiny(args.family, args.out))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from training.data.buckets import plan_buckets
    from training.data.dataset import list_dataset_files

    for item in plan_buckets(list_dataset_files(args.data), args.family, args.resolution):
        if args.json:
            print(json.dumps(item.to_dict()))
        elif item.dropped:
            print(f"{item.file}\tdropped\t{item.reason}")
        else:
            frames = f"\t{item.frames} frames" if item.frames else ""
            box = ",".join(map(str, item.crop_box))
            print(f"{item.file}\t{item.bucket_width}x{item.bucket_height}\tcrop {box}{frames}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    """Hook for bench/train_speed.py, which must define main(argv: list[str]) -> int | None."""
    try:
        module = importlib.import_module("bench.train_speed")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.train_speed"):
            raise
        print("bench/train_speed.py is not present in this build", file=sys.stderr)
        return 2
    return int(module.main(args.args) or 0)
