"""Locust users for bench/load_test.py: people with a run page open.

Each simulated person polls their run's status as static/js/run.js does (every 1.5 s), now
and then opens the dashboard, and now and then starts an upload (the upload-target call that
presigns where the browser sends the bytes). Sessions come from the file named by
ATTUNE_LOAD_SESSIONS, written by load_test.py: signed-in cookies and CSRF tokens of seeded
accounts, never a password.

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
