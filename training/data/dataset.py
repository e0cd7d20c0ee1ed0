"""prepare_data: list a dataset folder, plan buckets, attach captions, fingerprint it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from training.config import TrainingConfig
from training.data.buckets import BucketPlanItem, plan_buckets
from training.data.captions import caption_for
from training.errors import DatasetError
from training.results import SkippedFile


@dataclass(frozen=True)
class PreparedItem:
    """A usable media file: its plan and caption."""

    path: Path
    name: str  # path relative to the dataset folder, for messages
    plan: BucketPlanItem
    caption: str


@dataclass
class PreparedData:
    """Items to train on, files left out with reasons, and the dataset fingerprint."""

    items: list[PreparedItem]
    skipped: list[SkippedFile]
    fingerprint: str


def list_dataset_files(data_dir: Path) -> list[Path]:
    """Every regular, non-hidden file under data_dir except caption .txt files, sorted."""
    if not data_dir.is_dir():
        raise DatasetError("dataset folder does not exist", data_dir)
    files = [
        p
        for p in data_dir.rglob("*")
        if p.is_file()
        and p.suffix.lower() != ".txt"
        and not any(part.startswith(".") for part in p.relative_to(data_dir).parts)
    ]
    return sorted(files)


def prepare_data(config: TrainingConfig, data_dir: Path) -> PreparedData:
    """Plan every file; DatasetError when the folder is empty or nothing is usable."""
    files = list_dataset_files(data_dir)
    if not files:
        raise DatasetError("the dataset is empty: no images or videos found", data_dir)
    items: list[PreparedItem] = []
    skipped: list[SkippedFile] = []
    for plan in plan_buckets(files, config.family, config.resolution):
        path = Path(plan.file)
        name = path.relative_to(data_dir).as_posix()
        if plan.dropped:
            skipped.append(SkippedFile(name, plan.reason))
            continue
        caption = caption_for(path, config.caption_template, config.trigger_word)
        items.append(PreparedItem(path=path, name=name, plan=plan, caption=caption))
    if not items:
        raise DatasetError(nothing_usable_message(skipped), data_dir)
    return PreparedData(items, skipped, dataset_fingerprint(items))


def nothing_usable_message(skipped: list[SkippedFile]) -> str:
    """'nothing usable' plus the first few reasons."""
    reasons = "; ".join(f"{s.file}: {s.reason}" for s in skipped[:5])
    more = f" (+{len(skipped) - 5} more)" if len(skipped) > 5 else ""
    return f"nothing usable in the dataset: {reasons}{more}"


def dataset_fingerprint(items: list[PreparedItem]) -> str:
    """sha256 over each used file's relative name, byte size and caption, in name order."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.name):
        size = item.path.stat().st_size
        digest.update(f"{item.name}\0{size}\0{item.caption}\n".encode())
    return digest.hexdigest()
