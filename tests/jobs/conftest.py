"""A live HTTP server for the app and a real RQ worker process beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app.extensions import get_settings
from tests.conftest import DATABASES, running_app
from tests.support.processes import free_port


@dataclass
class LiveService:
    """The app served over real HTTP plus a worker working its queues."""

    url: str
    app: Flask
    worker: subprocess.Popen[bytes]
    worker_log: Path


def worker_environment(app: Flask) -> dict[str, str]:
    """The ATTUNE_* variables that point a worker process at the same services as `app`."""
    with app.app_context():
        settings = get_settings()
    return {
        **os.environ,
        "ATTUNE_ENV": "testing",
        "ATTUNE_INSTANCE_PATH": str(settings.instance_path),
        "ATTUNE_SECRET_KEY": settings.secret_key,
        "ATTUNE_DATABASE_URL": settings.database_url,
        "ATTUNE_REDIS_URL": settings.redis_url,
        "ATTUNE_BASE_URL": settings.base_url,
        "ATTUNE_STORAGE_ROOT": str(settings.storage_root),
        "ATTUNE_MODELS_DIR": str(settings.models_dir),
        "ATTUNE_SMTP_HOST": settings.smtp_host,
        "ATTUNE_SMTP_PORT": str(settings.smtp_port),
        "ATTUNE_SMTP_STARTTLS": str(settings.smtp_starttls),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(params=DATABASES)
def live_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveService]:
    """Serve a fresh app on a free port and start `python -m jobs.worker` against it."""
    port = free_port()
    with running_app(request, request.param, {"base_url": f"http://127.0.0.1:{port}"}) as app:
        yield from _serve_with_worker(app, port, tmp_path)


def _serve_with_worker(application: Flask, port: int, tmp_path: Path) -> Iterator[LiveService]:
    server = make_server("127.0.0.1", port, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobs.worker", "cpu", "gpu-cpu"],
            env=worker_environment(application),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    try:
        yield LiveService(f"http://127.0.0.1:{port}", application, worker, log_path)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.shutdown()
