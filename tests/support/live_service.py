"""The app served over real HTTP with a real RQ worker process beside it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from app.extensions import get_settings

REPO = Path(__file__).resolve().parents[2]


@dataclass
class LiveService:
    """The app served over real HTTP plus a worker working its queues."""

    url: str
    app: Flask
    worker: subprocess.Popen[bytes]
    worker_log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    privacy_worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start `python -m jobs.worker cpu gpu-cpu` in its own process group."""
        self.worker = self._worker_process("cpu", "gpu-cpu")
        return self.worker

    def start_privacy_worker(self) -> None:
        """Start the erasure worker beside it, as Procfile.dev's `privacy` line does."""
        self.privacy_worker = self._worker_process("privacy")

    def _worker_process(self, *queues: str) -> subprocess.Popen[bytes]:
        with open(self.worker_log, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "jobs.worker", *queues],
                env={**worker_environment(self.app), **self.extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )

    def kill_worker(self) -> None:
        """SIGKILL the worker and its work-horse (RQ gives it its own session), as a lost
        machine would."""
        for pid in [*descendants(self.worker.pid), self.worker.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.worker.wait()

    def stop_worker(self) -> None:
        """Stop the worker (and the privacy worker) politely, or kill it if it lingers."""
        if self.privacy_worker is not None and self.privacy_worker.poll() is None:
            os.killpg(self.privacy_worker.pid, signal.SIGTERM)
            try:
                self.privacy_worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.privacy_worker.pid, signal.SIGKILL)
                self.privacy_worker.wait()
        if self.worker.poll() is not None:
            return
        os.killpg(self.worker.pid, signal.SIGTERM)
        try:
            self.worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill_worker()

    def run_job(self, code: str, **env: str) -> str:
        """Run Python `code` in a process configured like the worker (e.g. a sweeper)."""
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**worker_environment(self.app), **self.extra_env, **env},
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


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


def serve_with_worker(
    application: Flask, port: int, tmp_path: Path, worker_env: dict[str, str] | None = None
) -> Iterator[LiveService]:
    """Serve `application` on `port` over real HTTP with a worker beside it, until closed."""
    server = make_server("127.0.0.1", port, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    service = LiveService(f"http://127.0.0.1:{port}", application, None, tmp_path / "worker.log")  # type: ignore[arg-type]
    service.extra_env = {"ATTUNE_RUN_HEARTBEAT_INTERVAL_S": "1", **(worker_env or {})}
    service.start_worker()
    try:
        yield service
    finally:
        service.stop_worker()
        server.shutdown()
