"""Run rules: validate, reserve quota and start, cancel, continue, report, hand out files."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from app.accounts.models import User
from app.billing.services import Standing, standing
from app.billing.usage import format_gpu_time
from app.datasets.models import Dataset, DatasetItem
from app.datasets.services import dataset_revision, item_counts
from app.db_types import utcnow
from app.errors import NotFound
from app.extensions import db, get_redis, get_settings, get_storage
from app.queues import enqueue_task, get_queue, queue_for_family
from app.trainings.artifacts import CAPTIONS_KIND, RunArtifacts
from app.trainings.events import emit_run_event_safely
from app.trainings.families import FAMILIES, estimate_gpu_seconds, step_speed
from app.trainings.models import FINISHED_STATUSES, TrainingRun
from app.trainings.params import validate_params
from app.trainings.presets import preset_defaults, presets_for
from app.trainings.quota import QuotaError, period_quota, release_reservation, reserve_gpu_quota
from app.trainings.telemetry import live_keys, loss_curve, progress_key
from app.webhooks.services import WebhookError, set_run_webhook
from catalogue.media import refusal
from catalogue.presets import PRESETS
from catalogue.prompts import fill_trigger

# Kinds of a run's LoRA files: "lora" (diffusers) and "comfyui"; a family with several denoisers
# (Wan 2.2 A14B) stores a pair per denoiser, e.g. "lora_high_noise", "comfyui_low_noise".
LORA_KIND = re.compile(r"^(lora|comfyui)(?:_([a-z][a-z0-9_]{0,30}))?$")
# The engine's sample files: step-000050-0.png is prompt 0 at step 50 (clips: .mp4 + .webp).
SAMPLE_NAME = re.compile(r"^step-(\d{1,9})-(\d{1,3})\.")


class RunError(Exception):
    """A run rule was broken; the message is for the person."""


class ParamsError(RunError):
    """Some parameters are out of range; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Some settings need another look.")
        self.errors = errors


class UnusableFilesError(RunError):
    """The dataset holds files the base model cannot train on; `files` maps each to why."""

    SHOWN = 10  # reasons spelled out in the message; `files` has them all

    def __init__(self, label: str, files: dict[str, str]) -> None:
        listed = "; ".join(f"{name}: {why}" for name, why in list(files.items())[: self.SHOWN])
        more = f"; and {len(files) - self.SHOWN} more" if len(files) > self.SHOWN else ""
        super().__init__(
            f"{len(files)} file{'s' if len(files) > 1 else ''} in this dataset cannot be used "
            f"with {label}: {listed}{more}. Remove them or choose another base model."
        )
        self.files = files


def list_runs(
    user: User, last_id: int | None = None, limit: int | None = None
) -> list[TrainingRun]:
    """The person's runs, newest first; a page of them below `last_id` when given."""
    query = select(TrainingRun).where(TrainingRun.user_id == user.id)
    if last_id is not None:
        query = query.where(TrainingRun.id < last_id)
    return list(db.session.scalars(query.order_by(TrainingRun.id.desc()).limit(limit)))


def get_run(user: User, run_id: int) -> TrainingRun:
    """The person's run, or NotFound."""
    run = db.session.scalar(
        select(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.user_id == user.id)
    )
    if run is None:
        raise NotFound(f"run {run_id}")
    return run


def allowed_families(account: Standing) -> list[str]:
    """Families this deployment offers that the person's plan includes (all, without a plan)."""
    plan = account.plan
    enabled = [name for name in get_settings().enabled_families if name in FAMILIES]
    return [name for name in enabled if plan is None or name in plan.families]


def estimate(account: Standing, family: str, steps: int) -> dict[str, Any]:
    """GPU time the run should take and what it leaves of this period's quota."""
    plan, speed = account.plan, step_speed(family)
    seconds = speed.gpu_seconds(steps)
    measured = {"gpu_seconds": seconds, "measured_runs": speed.measured_runs}
    if plan is None:
        return {**measured, "left_seconds": None, "allowance_seconds": None}
    left = period_quota(account).left_s
    return {
        **measured,
        "left_seconds": int(left),
        "left_after_seconds": int(left - seconds),
        "allowance_seconds": plan.gpu_seconds,
        "overage": plan.overage,
    }


def build_config(
    dataset: Dataset, family: str, preset: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The engine configuration: preset defaults, then the person's edits, then the dataset's."""
    if preset not in presets_for(family):
        raise ParamsError({"preset": f"Choose one of: {', '.join(presets_for(family))}."})
    values, errors = validate_params(family, params)
    if errors:
        raise ParamsError(errors)
    config = {"family": family, **preset_defaults(preset, family), **values}
    config["trigger_word"] = dataset.trigger_word or ""
    if dataset.caption_template:
        config["caption_template"] = dataset.caption_template
    if not config.get("sample_prompts"):
        subject = dataset.trigger_word or "the subject"
        config["sample_prompts"] = [f"a photo of {subject}"]
    return config


def start_run(
    user: User,
    dataset: Dataset,
    family: str,
    preset: str,
    params: dict[str, Any],
    name: str = "",
    parent: TrainingRun | None = None,
    webhook: Any = None,
    webhook_events_filter: Any = None,
    before_commit: Callable[[TrainingRun], None] | None = None,
    account: Standing | None = None,
    start_from: Any = None,
) -> TrainingRun:
    """Check the plan, reserve the estimate, record the run and queue it on its GPU class;
    `webhook` (+ `webhook_events_filter`) gets the run's events (app/webhooks); `start_from`
    (a run id, as sent) names a finished run whose LoRA the new run starts from.

    `before_commit` is called with the new run inside the transaction that records it, so a
    caller's own row about it (an Idempotency-Key's) is written with it or not at all.
    `account` is the person's standing when the caller has it already (else read here, once).
    """
    account = account or standing(user)
    _check_can_start(account, family)
    if item_counts(dataset).get("ready", 0) == 0:
        raise RunError("The dataset has no ready images yet. Upload some and wait for them.")
    source = warm_start_source(user, start_from, family)
    if source is not None and params.get("rank") in (None, ""):
        params = {**params, "rank": source.config.get("rank")}  # its weights need its rank
    config = build_config(dataset, family, preset, params)
    if source is not None and config.get("rank") != source.config.get("rank"):
        raise ParamsError({"start_from": f"That run's LoRA has rank {source.config.get('rank')}; "
                           "a run started from it keeps that rank."})  # fmt: skip
    unusable = unusable_files(dataset, family, preset)
    if unusable:
        raise UnusableFilesError(FAMILIES[family].label, unusable)
    run = TrainingRun(
        user_id=user.id,
        dataset_id=dataset.id,
        name=(name.strip() or f"{dataset.name} · {FAMILIES[family].label}")[:120],
        family=family,
        preset=preset,
        config=config,
        total_steps=config["steps"],
        queue=queue_for_family(family),
        parent_run_id=parent.id if parent else None,
        start_from_run_id=source.id if source else None,
        dataset_revision=dataset_revision(dataset),
    )
    try:
        set_run_webhook(run, webhook, webhook_events_filter)
    except WebhookError as exc:
        raise ParamsError({exc.field: exc.message}) from exc
    db.session.add(run)
    db.session.flush()
    try:
        reserve_gpu_quota(run, account, estimate_gpu_seconds(family, config["steps"]))
    except QuotaError as exc:
        raise RunError(str(exc)) from exc
    if before_commit is not None:
        before_commit(run)
    db.session.commit()
    try:
        _enqueue(run)
    except Exception as exc:
        release_reservation(run)
        db.session.delete(run)
        db.session.commit()
        raise RunError("The training queue is unavailable. Please try again in a minute.") from exc
    return run


def unusable_files(dataset: Dataset, family: str, preset: str) -> dict[str, str]:
    """Ready items the family cannot train on (wrong kind, clip too short), each with why.

    Judged from what ingest recorded (kind, frame count, frame rate) with the rules the
    engine's planner applies (catalogue.media), so the run is refused before it is queued.
    """
    facts, clips_only = FAMILIES[family], PRESETS[preset].clips_only
    query = select(DatasetItem).where(
        DatasetItem.dataset_id == dataset.id, DatasetItem.status == "ready"
    )
    refused: dict[str, str] = {}
    for item in db.session.scalars(query.order_by(DatasetItem.id)):
        kind = item.media_kind or item.content_type.partition("/")[0]
        if kind not in ("image", "video"):
            continue  # ingest made it ready; the engine judges what it cannot classify
        reason = refusal(facts, kind, item.frame_count or 0, item.fps or 0.0, clips_only)
        if reason:
            name = item.filename if item.filename not in refused else f"{item.filename} ({item.id})"
            refused[name] = reason
    return refused


def _check_can_start(account: Standing, family: str) -> None:
    if not account.can_start:
        raise RunError(account.reason)
    if family not in allowed_families(account):
        raise ParamsError({"family": "That base model is not part of your plan."})


def _enqueue(run: TrainingRun) -> None:
    """Queue the run's next attempt on its GPU class's queue."""
    job = enqueue_task(
        "jobs.training.run",
        run.id,
        queue=run.queue,
        timeout_s=get_settings().training_job_timeout_s,
        job_id=run_job_id(run.id, run.attempts + 1),
        description=f"training run {run.id}",
    )
    run.job_id = job.id
    db.session.commit()


def run_job_id(run_id: int, attempt: int) -> str:
    """The RQ job id of one attempt of a run."""
    return f"run-{run_id}-{attempt}"


def requeue_run(run: TrainingRun) -> None:
    """Queue the run's next attempt after its worker or its job was lost."""
    run.status = "queued"
    db.session.commit()
    _enqueue(run)


def cancel_run(run: TrainingRun) -> None:
    """Stop a run: a queued one at once, a running one at its next step (within seconds)."""
    if run.is_finished:
        raise RunError("This run has already finished.")
    run.cancel_requested = True
    if run.status == "queued":
        if run.job_id:
            get_queue(run.queue).remove(run.job_id)
        run.status, run.finished_at = "cancelled", utcnow()
        db.session.commit()
        release_reservation(run)
        emit_run_event_safely(run, "completed")
        return
    db.session.commit()


def continue_run(
    user: User,
    run: TrainingRun,
    extra_steps: int,
    before_commit: Callable[[TrainingRun], None] | None = None,
) -> TrainingRun:
    """A new run that resumes from this one's last checkpoint and trains `extra_steps` more."""
    refusal = continue_refusal(run)
    if refusal:
        raise RunError(refusal)
    if not 1 <= extra_steps <= 20_000:
        raise ParamsError({"extra_steps": "Add between 1 and 20000 steps."})
    dataset = db.session.get(Dataset, run.dataset_id)
    assert dataset is not None  # continue_refusal said so
    params = {**run.config, "steps": run.config["steps"] + extra_steps}
    name = f"{run.name} (+{extra_steps} steps)"
    preset = run.preset or "character"
    return start_run(
        user, dataset, run.family, preset, params, name, run, before_commit=before_commit
    )


def warm_start_sources(user: User) -> list[TrainingRun]:
    """The person's runs a new run can start from: finished, with a checkpoint stored."""
    runs = db.session.scalars(
        select(TrainingRun)
        .where(TrainingRun.user_id == user.id, TrainingRun.status == "succeeded")
        .order_by(TrainingRun.id.desc())
    )
    return [run for run in runs if RunArtifacts(run).checkpoints]


def warm_start_source(user: User, start_from: Any, family: str) -> TrainingRun | None:
    """The run `start_from` names (an id, or empty for a fresh LoRA), checked: the person's,
    finished with a checkpoint, on the same base model. ParamsError on `start_from` else."""
    if start_from in (None, ""):
        return None
    text = str(start_from) if isinstance(start_from, int | str) else ""  # True is "True"
    run_id = int(text) if text.isdigit() and int(text) < 2**31 else 0
    source = db.session.get(TrainingRun, run_id) if run_id else None
    if source is None or source.user_id != user.id:
        raise ParamsError({"start_from": "Choose one of your finished runs to start from."})
    if source.status != "succeeded" or not RunArtifacts(source).checkpoints:
        raise ParamsError(
            {"start_from": "Only a finished run whose LoRA is kept can be started from."}
        )
    if source.family != family:
        label = FAMILIES[source.family].label if source.family in FAMILIES else source.family
        message = f"That run trained {label}: its LoRA fits only the base model it was trained on."
        raise ParamsError({"start_from": message})
    return source


def started_from(run: TrainingRun) -> TrainingRun | None:
    """The run whose LoRA this one started from, while it exists."""
    return db.session.get(TrainingRun, run.start_from_run_id) if run.start_from_run_id else None


def continue_refusal(run: TrainingRun) -> str | None:
    """Why the run cannot be continued (trained more steps on the same data), or None."""
    if run.status != "succeeded":
        return "Only a finished run can be continued."
    dataset = db.session.get(Dataset, run.dataset_id) if run.dataset_id else None
    if dataset is None:
        return "The dataset of this run was deleted, so it cannot be continued."
    if run.dataset_revision and run.dataset_revision != dataset_revision(dataset):
        return (
            f"The dataset “{dataset.name}” has changed since this run trained on it (files, "
            "captions or the trigger word), and continuing trains more steps on the same data. "
            "Use “Duplicate with edits” to train a new run on the dataset as it is now."
        )
    return None


def queue_position(run: TrainingRun) -> int | None:
    """1 for the next job to start on its queue; None once it left the queue."""
    if run.status != "queued" or not run.job_id:
        return None
    position = get_queue(run.queue).get_job_position(run.job_id)
    return None if position is None else position + 1


def live_progress(run: TrainingRun) -> dict[str, Any]:
    """Status, step, loss curve, ETA, log tail, samples and downloads for the run page."""
    # One round trip for the three keys: this is polled every 1.5 s by every open run page.
    progress, loss, log = live_keys(run.id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.get(progress)
    pipe.lrange(loss, 0, -1)
    pipe.lrange(log, -50, -1)
    raw, points, lines = pipe.execute()
    live = json.loads(raw) if raw else {}
    curve = loss_curve(points)
    artifacts = run.artifacts or {}
    samples = [key.rsplit("/", 1)[-1] for key in artifacts.get("samples", [])]
    return {
        "id": run.id,
        "status": run.status,
        "total_steps": run.total_steps,
        **_live_fields(run, live),
        "loss_curve": curve or artifacts.get("loss_curve", []),
        "log": [line.decode() for line in lines],
        "error": run.error,
        "platform_fault": run.platform_fault,
        "used_gpu_seconds": round(run.used_gpu_seconds, 1),
        "gpu_time": format_gpu_time(run.used_gpu_seconds),  # as the billing page writes it
        "samples": samples,
        "sample_labels": {name: sample_label(run, name) for name in samples},
        "checkpoints": [int(step) for step in artifacts.get("checkpoints", {})],
        "checkpoint_downloads": [
            {
                "step": step,
                "files": [
                    {
                        "name": checkpoint_file_name(step, kind, files),
                        "kind": kind,
                        "label": checkpoint_label(step, kind),
                    }
                    for kind in files
                ],
            }
            for step, files in checkpoint_files(artifacts).items()
        ],
        "downloads": lora_downloads(artifacts),
        "captions": CAPTIONS_KIND in artifacts,
    }


def sample_label(run: TrainingRun, name: str) -> str:
    """What a sample file shows: its step and its prompt ("Step 50 · a photo of sks")."""
    match = SAMPLE_NAME.match(name)
    if match is None:
        return name
    prompts, index = run.config.get("sample_prompts") or [], int(match[2])
    label = f"Step {int(match[1])}"
    if index < len(prompts):
        label += " · " + fill_trigger(prompts[index], run.config.get("trigger_word") or "")
    return label


def live_status(run: TrainingRun) -> dict[str, Any]:
    """Step, loss, ETA and queue position only: one Redis read, for API clients polling."""
    raw = get_redis().get(progress_key(run.id))
    return _live_fields(run, json.loads(raw) if raw else {})


def _live_fields(run: TrainingRun, live: dict[str, Any]) -> dict[str, Any]:
    """The run's progress: the worker's latest report in Redis over what the database holds."""
    return {
        "step": max(run.step, live.get("step", 0)),
        "loss": live.get("loss", run.loss),
        "eta_seconds": None if run.is_finished else live.get("eta_seconds"),
        "queue_position": queue_position(run),
    }


def lora_downloads(artifacts: dict[str, Any]) -> list[str]:
    """The run's LoRA file kinds to offer: one pair per denoiser when it has several."""
    kinds = [kind for kind in artifacts if LORA_KIND.match(kind)]
    per_denoiser = [kind for kind in kinds if "_" in kind]
    # Per denoiser, the diffusers file first: lora, comfyui, lora_high_noise, comfyui_high_...
    return sorted(per_denoiser or kinds, key=lambda k: (k.partition("_")[2], k.startswith("c")))


def checkpoint_files(artifacts: dict[str, Any]) -> dict[int, dict[str, str]]:
    """Step -> the checkpoint's LoRA files (kind -> key), steps ascending, kinds as offered.

    A checkpoint stored before both formats were kept holds its diffusers file only.
    """
    found = {}
    for step, stored in (artifacts.get("checkpoints") or {}).items():
        files = stored if isinstance(stored, dict) else {"lora": stored}
        found[int(step)] = {kind: files[kind] for kind in lora_downloads(files)}
    return dict(sorted(found.items()))


def checkpoint_file_name(step: int, kind: str, files: dict[str, str]) -> str:
    """The download name of one checkpoint file: "50" for its first, "50-comfyui" and so on."""
    return str(step) if kind == next(iter(files), None) else f"{step}-{kind}"


def download_label(kind: str) -> str:
    """The button text of a LoRA kind: its layout, and its denoiser when there are several."""
    return f"LoRA ({_layout_words(kind)})" if LORA_KIND.match(kind) else kind


def diffusers_loads(run: TrainingRun) -> list[tuple[str, bool]]:
    """The diffusers LoRA files of a finished run as (file name, into transformer_2), in the
    order to load them: Wan 2.2 A14B's low-noise expert is diffusers' ``transformer_2``."""
    kinds = [k for k in lora_downloads(run.artifacts or {}) if k.startswith("lora")]
    return [(download_filename(run, kind), kind == "lora_low_noise") for kind in kinds]


def checkpoint_label(step: int, kind: str) -> str:
    """The link text of one checkpoint file, e.g. "Checkpoint at step 50 (diffusers)"."""
    return f"Checkpoint at step {step} ({_layout_words(kind)})"


def _layout_words(kind: str) -> str:
    match = LORA_KIND.match(kind)
    if match is None:
        return kind
    layout = "diffusers" if match[1] == "lora" else "ComfyUI / A1111"
    which = f", {match[2].replace('_', ' ')}" if match[2] else ""
    return f"{layout}{which}"


def download_url(run: TrainingRun, kind: str, name: str | None = None) -> str:
    """A short-lived attachment URL for one of the run's files, after the ownership check."""
    key = _artifact_key(run, kind, name)
    if not key:
        raise NotFound(f"{kind} of run {run.id}")
    filename = download_filename(run, kind, name)
    return get_storage().presign_download(key, get_settings().download_url_expiry_s, filename)


def download_filename(run: TrainingRun, kind: str, name: str | None = None) -> str:
    """The name a downloaded file of the run is saved under."""
    if kind == "checkpoint":
        step, file_kind = _checkpoint_kind(run, name or "")
        layout = "" if file_kind in ("lora", None) else f"_{file_kind}"
        return f"attune-run-{run.id}-step-{step or 0:06d}{layout}.safetensors"
    key = _artifact_key(run, kind, name) or ""
    filename = key.rsplit("/", 1)[-1]
    return f"attune-run-{run.id}-{filename}" if kind in ("sample", CAPTIONS_KIND) else filename


def list_artifacts(run: TrainingRun) -> list[tuple[str, str | None]]:
    """Every downloadable file of the run as (kind, name), in the form download_url takes."""
    artifacts = run.artifacts or {}
    found: list[tuple[str, str | None]] = [(k, None) for k in lora_downloads(artifacts)]
    for step, files in checkpoint_files(artifacts).items():
        found += [("checkpoint", checkpoint_file_name(step, kind, files)) for kind in files]
    found += [("sample", key.rsplit("/", 1)[-1]) for key in artifacts.get("samples", [])]
    if CAPTIONS_KIND in artifacts:
        found.append((CAPTIONS_KIND, None))
    return found


def checkpoint_step(name: str) -> int | None:
    """The step a checkpoint name such as "50", "step-000050" or "50-comfyui" refers to."""
    digits = name.removeprefix("step-").partition("-")[0]
    return int(digits) if digits.isdigit() and len(digits) <= 9 else None


def _checkpoint_kind(run: TrainingRun, name: str) -> tuple[int | None, str | None]:
    """(step, file kind) of a checkpoint download name; the kind is None when there is none."""
    step = checkpoint_step(name)
    files = checkpoint_files(run.artifacts or {}).get(step or -1, {})
    kind = name.removeprefix("step-").partition("-")[2] or next(iter(files), None)
    return step, kind if kind in files else None


def _artifact_key(run: TrainingRun, kind: str, name: str | None) -> str | None:
    artifacts = run.artifacts or {}
    if LORA_KIND.match(kind) or kind == CAPTIONS_KIND:
        return artifacts.get(kind)
    if kind == "checkpoint" and name:
        step, file_kind = _checkpoint_kind(run, name)
        if step is None or file_kind is None:
            return None
        return checkpoint_files(artifacts)[step][file_kind]
    if kind == "sample" and name:
        return next((k for k in artifacts.get("samples", []) if k.endswith("/" + name)), None)
    return None


def active_run_count(user: User) -> int:
    """Runs of the person that are queued or running."""
    query = select(func.count()).where(
        TrainingRun.user_id == user.id, TrainingRun.status.not_in(FINISHED_STATUSES)
    )
    return int(db.session.scalar(query) or 0)
