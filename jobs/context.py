"""The Flask app a task runs inside, created once per process that runs tasks."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, has_app_context

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


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Puts the job's label at the front of every line."""

    def process(self, msg: object, kwargs: Any) -> tuple[str, Any]:
        """Prefix the message with the job label."""
        return f"[{self.extra['job']}] {msg}", kwargs  # type: ignore[index]


def job_logger(name: str, job_label: str) -> JobLogger:
    """A logger for one job, e.g. job_logger(__name__, "run 12 attempt 1")."""
    return JobLogger(logging.getLogger(name), {"job": job_label})
