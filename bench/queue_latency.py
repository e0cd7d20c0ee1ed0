"""Enqueue-to-first-step latency with a warm worker, and the cost of progress reporting.

Run: .venv/bin/python bench/queue_latency.py [--runs 5]

Starts a private Redis, an embedded SQLite app and one warm `python -m jobs.worker
--preload-torch` process on the tiny family, then starts runs one after another and times
enqueue -> picked up (status running) -> first training step (progress in Redis). Then it
times RunReporter.on_progress for step events against the tiny CPU step and a 0.30 s GPU step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.processes import RedisServer  # noqa: E402


def make_app(instance: Path, redis_url: str):  # type: ignore[no-untyped-def]
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"instance_path": instance, "redis_url": redis_url, "env": "testing"})
    with app.app_context():
        upgrade()
    return app


def seed_user(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A Pro subscriber with a dataset of four ready 64x64 images."""
    import io
    from datetime import timedelta

    from PIL import Image

    from app.accounts.models import User
    from app.billing.models import Subscription
    from app.datasets.models import Dataset, DatasetItem
    from app.db_types import utcnow
    from app.extensions import db, get_storage

    with app.app_context():
        user = User(email="bench@example.com", name="Bench", adult_confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
        db.session.add(Subscription(user_id=user.id, plan="studio", status="active",
                                    current_period_start=utcnow() - timedelta(days=1),
                                    current_period_end=utcnow() + timedelta(days=29)))  # fmt: skip
        dataset = Dataset(user_id=user.id, name="bench", trigger_word="sks")
        db.session.add(dataset)
        db.session.flush()
        for index in range(4):
            key = f"{dataset.storage_prefix()}items/{index}/original.png"
            buffer = io.BytesIO()
            Image.effect_noise((64, 64), 50 + index).convert("RGB").save(buffer, "PNG")
            get_storage().put(key, buffer.getvalue(), "image/png")
            item = DatasetItem(dataset_id=dataset.id, filename=f"{index}.png", storage_key=key,
                               content_type="image/png", status="ready", width=64, height=64,
                               size_bytes=len(buffer.getvalue()))  # fmt: skip
            db.session.add(item)
        db.session.commit()
        return user.id, dataset.id


def time_one_run(app, user_id: int, dataset_id: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Seconds from enqueue to running, and from enqueue to the first step."""
    from app.accounts.models import User
    from app.datasets.models import Dataset
    from app.extensions import db, get_redis
    from app.trainings.models import TrainingRun
    from app.trainings.services import PROGRESS_KEY, start_run

    with app.app_context():
        user, dataset = db.session.get(User, user_id), db.session.get(Dataset, dataset_id)
        t0 = time.perf_counter()
        run = start_run(user, dataset, "tiny-sd", "character", {"steps": 3, "rank": 4})
        picked = first = None
        while first is None:
            db.session.expire_all()
            status = db.session.get(TrainingRun, run.id).status
            if picked is None and status != "queued":
                picked = time.perf_counter() - t0
            raw = get_redis().get(PROGRESS_KEY.format(run_id=run.id))
            if raw and json.loads(raw)["step"] >= 1:
                first = time.perf_counter() - t0
            time.sleep(0.01)
        while db.session.get(TrainingRun, run.id).status not in ("succeeded", "failed"):
            db.session.expire_all()
            time.sleep(0.05)
        return picked or first, first


def reporting_cost(app, user_id: int, dataset_id: int) -> float:  # type: ignore[no-untyped-def]
    """Mean seconds RunReporter spends on one step event (Redis always, DB throttled)."""
    from app.extensions import db, get_redis
    from app.trainings.models import TrainingRun
    from jobs.progress import RunReporter
    from training import ProgressEvent

    with app.app_context():
        run = db.session.scalars(db.select(TrainingRun)).first()
        reporter = RunReporter(run, get_redis())
        events = [ProgressEvent("step", i, 10_000, loss=0.1, eta_seconds=5.0) for i in range(2000)]
        t0 = time.perf_counter()
        for event in events:
            reporter.on_progress(event)
        return (time.perf_counter() - t0) / len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    redis = RedisServer()
    instance = Path(tempfile.mkdtemp(prefix="attune-bench-"))
    worker = None
    try:
        app = make_app(instance, redis.url)
        user_id, dataset_id = seed_user(app)
        env = {"ATTUNE_INSTANCE_PATH": str(instance), "ATTUNE_REDIS_URL": redis.url,
               "ATTUNE_ENV": "testing", "PATH": str(Path(sys.executable).parent)}  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobs.worker", "--preload-torch", "cpu", "gpu-cpu"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time_one_run(app, user_id, dataset_id)  # warm-up: builds the tiny model once
        timings = [time_one_run(app, user_id, dataset_id) for _ in range(args.runs)]
        picked = [p for p, _ in timings]
        first = [f for _, f in timings]
        per_event = reporting_cost(app, user_id, dataset_id)
        print(f"runs measured: {args.runs} (tiny-sd, 3 steps, warm worker, CPU)")
        print(f"enqueue -> picked up:  median {statistics.median(picked) * 1000:.0f} ms")
        print(f"enqueue -> first step: median {statistics.median(first):.2f} s, "
              f"max {max(first):.2f} s")  # fmt: skip
        print(f"progress reporting: {per_event * 1e3:.3f} ms per step event")
        print(f"  share of a 0.30 s GPU step: {per_event / 0.30 * 100:.2f} %")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait()
        redis.stop()


if __name__ == "__main__":
    main()
