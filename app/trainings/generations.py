"""Try it: render prompts with a finished run's LoRA, as a metered GPU job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.accounts.models import User
from app.billing.services import standing
from app.errors import NotFound
from app.extensions import db, get_settings, get_storage
from app.queues import enqueue_task
from app.trainings.models import Generation, TrainingRun
from app.trainings.services import RunError

MAX_PROMPT_CHARS = 500
GENERATION_TIMEOUT_S = 1800


def start_generation(
    user: User, run: TrainingRun, prompt: str, strength: float, seed: int
) -> Generation:
    """Queue a render of `prompt` with the run's LoRA at `strength` on its GPU class."""
    prompt = prompt.strip()
    if run.status != "succeeded" or "lora" not in (run.artifacts or {}):
        raise RunError("Try it works once the run has finished and its LoRA is ready.")
    if not prompt or len(prompt) > MAX_PROMPT_CHARS:
        raise RunError(f"Write a prompt of 1 to {MAX_PROMPT_CHARS} characters.")
    if not 0.0 <= strength <= 2.0:
        raise RunError("Strength must be between 0 and 2.")
    if not 0 <= seed < 2**31:
        raise RunError("Seed must be between 0 and 2147483647.")
    _check_quota(user)
    generation = Generation(
        user_id=user.id, run_id=run.id, prompt=prompt, strength=strength, seed=seed
    )
    db.session.add(generation)
    db.session.commit()
    queue_generation(generation, run.queue)
    return generation


def generation_job_id(generation_id: int) -> str:
    """The RQ job id of a generation, so a sweeper can tell whether Redis still has it."""
    return f"generation-{generation_id}"


def queue_generation(generation: Generation, queue: str) -> None:
    """Queue (again) the render of `generation` on `queue`; a finished one is left alone."""
    enqueue_task(
        "jobs.generations.run",
        generation.id,
        queue=queue,
        timeout_s=GENERATION_TIMEOUT_S,
        job_id=generation_job_id(generation.id),
    )


def _check_quota(user: User) -> None:
    """Generating follows the same rule as starting a run."""
    account = standing(user)
    if not account.can_start:
        raise RunError(account.reason)


def list_generations(run: TrainingRun) -> list[Generation]:
    """The run's generations, newest first."""
    query = select(Generation).where(Generation.run_id == run.id)
    return list(db.session.scalars(query.order_by(Generation.id.desc())))


def get_generation(user: User, generation_id: int) -> Generation:
    """The person's generation, or NotFound."""
    generation = db.session.scalar(
        select(Generation).where(Generation.id == generation_id, Generation.user_id == user.id)
    )
    if generation is None:
        raise NotFound(f"generation {generation_id}")
    return generation


def generation_json(generation: Generation) -> dict[str, Any]:
    """What the run page shows of a generation."""
    return {
        "id": generation.id,
        "status": generation.status,
        "prompt": generation.prompt,
        "strength": generation.strength,
        "seed": generation.seed,
        "error": generation.error,
        "media": [key.rsplit("/", 1)[-1] for key in generation.media_keys or []],
    }


def media_url(generation: Generation, name: str) -> str:
    """A short-lived URL for one of the generation's files."""
    key = next((k for k in generation.media_keys or [] if k.endswith("/" + name)), None)
    if key is None:
        raise NotFound(name)
    expiry = get_settings().download_url_expiry_s
    return get_storage().presign_download(key, expiry, f"attune-{generation.id}-{name}")
