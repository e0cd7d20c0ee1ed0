"""The Flask app a task runs inside, created once per process that runs tasks."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, has_app_context
from rq import get_current_job

_app: Flask | None = None
_app_pid: int | None = None


def task_app() -> Flask:
    """This process's app; a forked work-horse builds its own so no DB socket is shared."""
    global _app, _app_pid
    if _app is None or _app_pid != os.getpid():
        from app import create_app

        _app, _app_pid = create_app(), os.getpid()
    return _app


@contextmanager
def app_context() -> Iterator[Flask]:
    """Run the body inside this process's app context (or the one already active, as when a
    test or a `flask` command calls a task directly)."""
    if has_app_context():
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    app = task_app()
    with app.app_context():
        yield app


LOG_FORMAT = "%(asctime)s %(levelname)s [job %(job_id)s] %(name)s %(message)s"


class JobIdFilter(logging.Filter):
    """Stamps each log record with the id of the RQ job it was written in ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add record.job_id; never drops a record."""
        job = get_current_job()
        record.job_id = job.id if job is not None else "-"
        return True


def log_with_job_ids(level: int = logging.INFO) -> None:
    """Configure the worker's logging so every line names its RQ job."""
    handler = logging.StreamHandler()
    handler.addFilter(JobIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Puts the job's label at the front of every line."""

    def process(self, msg: object, kwargs: Any) -> tuple[str, Any]:
        """Prefix the message with the job label."""
        return f"[{self.extra['job']}] {msg}", kwargs  # type: ignore[index]


def job_logger(name: str, job_label: str) -> JobLogger:
    """A logger for one job, e.g. job_logger(__name__, "run 12 attempt 1")."""
    return JobLogger(logging.getLogger(name), {"job": job_label})
