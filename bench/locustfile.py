"""Locust users for bench/load_test.py: people with a run page open, and scripts using the API.

Each simulated person polls their run's status as static/js/run.js does (every 1.5 s), now
and then opens the dashboard, and now and then starts an upload (the upload-target call that
presigns where the browser sends the bytes). Each API client polls its run through
GET /api/v1/trainings/<id> at the same pace (as a `--wait` progress bar would), now and then
lists its runs or reads its usage. Sessions come from the file named by ATTUNE_LOAD_SESSIONS,
written by load_test.py: signed-in cookies, CSRF tokens and read-only API keys of seeded
accounts, never a password. Name the classes to run on the command line (Person, ApiClient).

Run it through bench/load_test.py, which prepares the instance and starts gunicorn; by hand:
    ATTUNE_LOAD_SESSIONS=sessions.json locust -f bench/locustfile.py --headless \
        -u 50 -r 25 -t 30s --host http://127.0.0.1:8000
"""

from __future__ import annotations

import itertools
import json
import os
import random
from typing import Any

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

with open(os.environ["ATTUNE_LOAD_SESSIONS"]) as _handle:
    SESSIONS: list[dict[str, Any]] = json.load(_handle)
_NEXT = itertools.count()


class Person(FastHttpUser):
    """One signed-in person watching a run, with the dashboard and uploads now and then."""

    wait_time = between(1.0, 2.0)  # the run page polls every 1.5 s

    def on_start(self) -> None:
        """Take the next seeded session (round robin)."""
        self.account = SESSIONS[next(_NEXT) % len(SESSIONS)]
        self.headers = {"Cookie": f"session={self.account['cookie']}"}

    @task(8)
    def run_status(self) -> None:
        """GET /api/runs/<id> (queued, running or finished)."""
        run_id = random.choice(self.account["run_ids"])
        self.client.get(f"/api/runs/{run_id}", headers=self.headers, name="/api/runs/[id]")

    @task(1)
    def dashboard(self) -> None:
        """GET /dashboard, the signed-in home page."""
        self.client.get("/dashboard", headers=self.headers, name="/dashboard")

    @task(1)
    def upload_target(self) -> None:
        """POST /api/datasets/<id>/uploads: quota check, item row, presigned PUT."""
        body = {"filename": f"photo-{random.randrange(10**9)}.jpg", "size": 2_400_000}
        with self.client.post(
            f"/api/datasets/{self.account['dataset_id']}/uploads",
            data=json.dumps(body),
            headers={
                **self.headers,
                "X-CSRFToken": self.account["token"],
                "Content-Type": "application/json",
            },
            name="/api/datasets/[id]/uploads",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class ApiClient(FastHttpUser):
    """A script with an API key watching one of its runs through /api/v1."""

    wait_time = between(1.0, 2.0)

    def on_start(self) -> None:
        """Take the next seeded account's key (round robin)."""
        self.account = SESSIONS[next(_NEXT) % len(SESSIONS)]
        self.headers = {"Authorization": f"Bearer {self.account['api_key']}"}

    @task(8)
    def training(self) -> None:
        """GET /api/v1/trainings/<id> (queued, running or finished)."""
        run_id = random.choice(self.account["run_ids"])
        self.client.get(
            f"/api/v1/trainings/{run_id}", headers=self.headers, name="/api/v1/trainings/[id]"
        )

    @task(1)
    def trainings(self) -> None:
        """GET /api/v1/trainings, the first page of runs."""
        self.client.get("/api/v1/trainings", headers=self.headers, name="/api/v1/trainings")

    @task(1)
    def usage(self) -> None:
        """GET /api/v1/usage, this period's GPU time."""
        self.client.get("/api/v1/usage", headers=self.headers, name="/api/v1/usage")
