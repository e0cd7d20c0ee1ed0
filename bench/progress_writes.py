"""Progress writes per second one training worker sustains: RunReporter.on_progress in a loop.

Run: .venv/bin/python bench/progress_writes.py [--events 5000] [--database sqlite|postgres]

Each step event writes the live progress and one loss point to Redis in one pipeline; the run
row is updated at most every DB_WRITE_INTERVAL_S (2 s). The second figure forces a database
write on every event, to show what the throttle saves. A private Redis (and PostgreSQL with
--database postgres) on 127.0.0.1; everything stops when the script ends.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.processes import PostgresServer, RedisServer  # noqa: E402


@dataclass
class StepEvent:
    """What training.ProgressEvent.to_dict() gives for a step (no torch import needed)."""

    kind: str
    step: int
    total_steps: int
    loss: float
    eta_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The event as the reporter reads it."""
        return asdict(self)


def measure(app: Any, events: int, throttled: bool) -> float:
    """Seconds per on_progress call over `events` step events."""
    from app.accounts.models import User
    from app.datasets.models import Dataset
    from app.db_types import utcnow
    from app.extensions import db, get_redis
    from app.trainings.models import TrainingRun
    from jobs import progress

    with app.app_context():
        user = User(email=f"p{time.monotonic_ns()}@example.com", name="P",
                    adult_confirmed_at=utcnow())  # fmt: skip
        db.session.add(user)
        db.session.flush()
        dataset = Dataset(user_id=user.id, name="d")
        db.session.add(dataset)
        db.session.flush()
        run = TrainingRun(user_id=user.id, dataset_id=dataset.id, name="bench", family="tiny-sd",
                          preset="character", config={}, total_steps=events, queue="gpu-cpu",
                          status="running")  # fmt: skip
        db.session.add(run)
        db.session.commit()
        saved = progress.DB_WRITE_INTERVAL_S
        progress.DB_WRITE_INTERVAL_S = saved if throttled else 0.0
        try:
            reporter = progress.RunReporter(run, get_redis())
            batch = [StepEvent("step", i, events, 0.1 + 1 / i, 60.0) for i in range(1, events + 1)]
            started = time.perf_counter()
            for event in batch:
                reporter.on_progress(event)
            return (time.perf_counter() - started) / events
        finally:
            progress.DB_WRITE_INTERVAL_S = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    redis, postgres = RedisServer(), None
    instance = Path(tempfile.mkdtemp(prefix="attune-progress-"))
    try:
        if args.database == "postgres":
            postgres = PostgresServer()
            url = postgres.create_database("attune_progress")
        else:
            url = f"sqlite:///{instance / 'attune.db'}"
        from flask_migrate import upgrade

        from app import create_app

        app = create_app({"env": "testing", "instance_path": instance, "redis_url": redis.url,
                          "database_url": url})  # fmt: skip
        with app.app_context():
            upgrade()
        measure(app, 200, True)  # warm-up
        throttled = measure(app, args.events, True)
        every = measure(app, max(200, args.events // 5), False)
        print(f"database={args.database} events={args.events}")
        print(f"throttled (DB every 2 s): {1 / throttled:,.0f} writes/s "
              f"({throttled * 1000:.3f} ms per step event)")  # fmt: skip
        print(f"DB write on every event:  {1 / every:,.0f} writes/s ({every * 1000:.3f} ms)")
        print(f"share of a 0.30 s GPU step: {throttled / 0.30 * 100:.3f} %")
    finally:
        redis.stop()
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()
