"""A run's files between scratch and storage: dataset in, checkpoints both ways, outputs out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app import object_keys
from app.datasets.models import DatasetItem
from app.extensions import db, get_storage
from app.trainings.artifacts import RunArtifacts
from app.trainings.models import TrainingRun
from app.trainings.services import CAPTIONS_KIND

CHECKPOINTS = "checkpoints"


def copy_dataset(run: TrainingRun, data_dir: Path) -> int:
    """Download the ready items as item-<id><ext>, each caption beside it; returns the count."""
    data_dir.mkdir(parents=True, exist_ok=True)
    storage, count = get_storage(), 0
    items = db.session.query(DatasetItem).filter_by(dataset_id=run.dataset_id, status="ready")
    for item in items:
        stem = data_dir / scratch_stem(item)
        storage.download_file(item.storage_key, stem.with_suffix(Path(item.storage_key).suffix))
        if item.caption:
            stem.with_suffix(".txt").write_text(item.caption, encoding="utf-8")
        count += 1
    return count


def scratch_stem(item: DatasetItem) -> str:
    """The name of an item's file on the worker, without its extension: never the person's."""
    return f"item-{item.id}"


def uploaded_names(run: TrainingRun) -> dict[str, str]:
    """The worker's name of each ready item (as copy_dataset writes it) -> the uploaded name."""
    items = db.session.query(DatasetItem).filter_by(dataset_id=run.dataset_id, status="ready")
    return {scratch_stem(item): item.filename for item in items}


def checkpoint_prefix(run: TrainingRun, step: int) -> str:
    """Storage prefix of one checkpoint folder of the run."""
    return object_keys.run_checkpoint(run.storage_prefix(), step)


def upload_checkpoint(run: TrainingRun, folder: Path, step: int) -> dict[str, str]:
    """Upload a checkpoint folder; returns its downloadable LoRA files, kind -> key.

    The kinds are the final export's ("lora", "comfyui"; a pair per denoiser for families with
    several); the folder's other files are the state resuming needs.
    """
    from training.checkpoints import checkpoint_downloads

    storage, prefix = get_storage(), checkpoint_prefix(run, step)
    for path in sorted(folder.iterdir()):
        if path.is_file():
            storage.upload_file(
                object_keys.child(prefix, path.name), path, "application/octet-stream"
            )
    downloads = checkpoint_downloads(folder)
    return {kind: object_keys.child(prefix, path.name) for kind, path in downloads.items()}


def restore_latest_checkpoint(run: TrainingRun, out_dir: Path) -> int | None:
    """Download the newest stored checkpoint of this run (else of its parent) into out_dir."""
    source = run
    checkpoints = _checkpoint_steps(run)
    if not checkpoints and run.parent_run_id:
        parent = db.session.get(TrainingRun, run.parent_run_id)
        if parent is not None:
            source, checkpoints = parent, _checkpoint_steps(parent)
    if not checkpoints:
        return None
    step = max(checkpoints)
    _download_checkpoint(source, step, out_dir / CHECKPOINTS / f"step-{step:06d}")
    return step


def download_start_weights(run: TrainingRun, folder: Path) -> Path | None:
    """The final checkpoint of the run `run` starts from, downloaded under folder; None when
    `run` starts from nothing. A source whose LoRA is gone meanwhile is the person's error."""
    from training.errors import ConfigError

    if run.start_from_run_id is None:
        return None
    source = db.session.get(TrainingRun, run.start_from_run_id)
    steps = _checkpoint_steps(source) if source is not None else []
    if not steps:
        raise ConfigError("The run this one starts from has no LoRA any more; start it afresh.")
    target = folder / f"step-{max(steps):06d}"
    _download_checkpoint(source, max(steps), target)
    return target


def _download_checkpoint(source: TrainingRun, step: int, target: Path) -> None:
    storage, prefix = get_storage(), checkpoint_prefix(source, step)
    target.mkdir(parents=True, exist_ok=True)
    for info in storage.list(prefix):
        storage.download_file(info.key, target / info.key.rsplit("/", 1)[-1])


def forget_rotated_checkpoints(run: TrainingRun, kept_steps: set[int]) -> None:
    """Delete stored checkpoints the trainer rotated away locally."""
    artifacts = RunArtifacts(run)
    rotated = [int(s) for s in artifacts.checkpoints if int(s) not in kept_steps]
    for step in rotated:
        get_storage().delete_prefix(checkpoint_prefix(run, step))
    artifacts.drop_checkpoints(rotated)


def upload_sample(run: TrainingRun, path: Path) -> str:
    """Upload one sample image or clip and return its key."""
    key = object_keys.run_sample(run.storage_prefix(), path.name)
    from training.samples import CONTENT_TYPES

    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    get_storage().upload_file(key, path, content_type)
    return key


def upload_outputs(run: TrainingRun, result: Any) -> dict[str, Any]:
    """Upload the final LoRA files and the captions trained, record their keys; the artifacts.

    Kinds come from result.lora_files ("lora", "comfyui"; a pair per denoiser for families
    with several). "lora"/"comfyui" always name the first pair, so the runs list's download
    and try-it find a file for every family.
    """
    files = result.lora_files or {"lora": result.lora_path, "comfyui": result.comfyui_path}
    keys, by_kind = {}, {}
    for kind, path in files.items():
        if path:
            keys[path] = object_keys.run_lora(run.storage_prefix(), Path(path).name)
            get_storage().upload_file(keys[path], Path(path), "application/octet-stream")
            by_kind[kind] = keys[path]
    for kind, path in (("lora", result.lora_path), ("comfyui", result.comfyui_path)):
        if path in keys:
            by_kind.setdefault(kind, keys[path])
    if result.captions_path:
        by_kind[CAPTIONS_KIND] = upload_captions(run, Path(result.captions_path))
    artifacts = RunArtifacts(run)
    artifacts.update(**by_kind)
    return artifacts.data


def upload_captions(run: TrainingRun, path: Path) -> str:
    """Upload the engine's captions.txt with each file under the name the person uploaded.

    The worker's copy names files item-<id><ext> (copy_dataset); the download says which of
    the person's files trained with which caption.
    """
    items = db.session.query(DatasetItem).filter_by(dataset_id=run.dataset_id)
    names = {f"item-{item.id}": item.filename for item in items}
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, tab, caption = line.partition("\t")
        lines.append(f"{names.get(Path(name).stem, name)}{tab}{caption}")
    key = object_keys.run_captions(run.storage_prefix())
    text = "\n".join(lines) + "\n"
    get_storage().put(key, text.encode("utf-8"), "text/plain; charset=utf-8")
    return key


def _checkpoint_steps(run: TrainingRun) -> list[int]:
    return [int(step) for step in RunArtifacts(run).checkpoints]
