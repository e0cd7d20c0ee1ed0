"""Redis restarts empty while a run waits in its queue: no run is lost.

The database is the truth: the sweeper (jobs.maintenance.requeue_stale_runs, every minute from
the scheduler) finds the queued run whose job Redis forgot and queues it again, and a real
worker then trains it to the end. A worker SIGKILLed mid-run is covered by
tests/jobs/test_run_lifecycle.py::test_a_killed_worker_resumes_from_its_checkpoint_without_double_metering.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis

from app.datasets.models import Dataset, DatasetItem
from app.extensions import db, get_storage
from tests.support.accounts import activate_plan, seed_user, signed_in_client
from tests.support.apps import running_app
from tests.support.live_service import worker_environment
from tests.support.media_files import noise_png_bytes
from tests.support.processes import VENV_BIN, free_port, port_open, stop, wait_until
from tests.support.web import csrf_token

REPO = Path(__file__).resolve().parents[2]


class RestartableRedis:
    """A private redis-server that can be stopped and started again, empty, on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="attune-redis-restart-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start with no data (nothing is saved, as after a crash without persistence)."""
        binary = shutil.which("redis-server", path=str(VENV_BIN)) or "redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: port_open(self.port), 20, "redis-server")

    def stop(self) -> None:
        """Stop the server; what it held is gone."""
        if self.process is not None:
            stop(self.process)
            self.process = None

    def close(self) -> None:
        """Stop and remove the folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_that_restarts() -> Iterator[RestartableRedis]:
    """A Redis this test may restart."""
    server = RestartableRedis()
    yield server
    server.close()


def sweep(app: Flask) -> dict[str, int]:
    """Run the scheduler's sweeper as it runs in production: in its own process."""
    code = "from jobs.maintenance import requeue_stale_runs; print(requeue_stale_runs())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=worker_environment(app), cwd=REPO,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_queued_run_survives_redis_restarting_empty(
    request: pytest.FixtureRequest, redis_that_restarts: RestartableRedis
) -> None:
    with running_app(request, "sqlite", {"redis_url": redis_that_restarts.url}) as app:
        user_id = seed_user(app, "ada@example.com")
        activate_plan(app, "ada@example.com", "pro")
        with app.app_context():
            dataset = Dataset(user_id=user_id, name="Noise", trigger_word="sks")
            db.session.add(dataset)
            db.session.flush()
            for n in range(2):
                key = f"{dataset.storage_prefix()}items/{n}/original.png"
                get_storage().put(key, noise_png_bytes((64, 64), seed=n), "image/png")
                db.session.add(DatasetItem(dataset_id=dataset.id, filename=f"{n}.png",
                                           storage_key=key, content_type="image/png",
                                           media_kind="image", status="ready", width=64,
                                           height=64, size_bytes=100))  # fmt: skip
            db.session.commit()
            dataset_id = dataset.id
        client = signed_in_client(app, "ada@example.com")
        headers = {"X-CSRFToken": csrf_token(client.get("/dashboard").text)}
        started = client.post(
            "/api/runs",
            json={"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character",
                  "params": {"steps": 2, "rank": 4, "checkpoint_every": 0, "sample_every": 0}},
            headers=headers,
        )  # fmt: skip
        assert started.status_code == 201, started.get_json()
        run_id = started.get_json()["id"]
        assert started.get_json()["queue_position"] == 1

        redis_that_restarts.stop()
        down = client.get(f"/api/runs/{run_id}")
        assert down.status_code == 503 and "unavailable" in down.get_json()["error"]
        redis_that_restarts.start()
        assert Redis.from_url(redis_that_restarts.url).dbsize() == 0
        lost = client.get(f"/api/runs/{run_id}").get_json()
        assert lost["status"] == "queued" and lost["queue_position"] is None  # the job is gone

        assert sweep(app)["requeued"] == 1
        assert client.get(f"/api/runs/{run_id}").get_json()["queue_position"] == 1
        assert sweep(app)["requeued"] == 0  # a second pass finds the job and leaves it

        worker = subprocess.run(
            [sys.executable, "-m", "jobs.worker", "--burst", "gpu-cpu"],
            env=worker_environment(app), cwd=REPO, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-3000:]
        done = client.get(f"/api/runs/{run_id}").get_json()
        assert done["status"] == "succeeded", (done, worker.stderr[-3000:])
        assert done["step"] == 2 and "lora" in done["downloads"]
        assert client.get(f"/runs/{run_id}/download/lora").status_code == 302
