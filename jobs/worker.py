"""Worker start-up: `python -m jobs.worker [--preload-torch] QUEUE [QUEUE ...]`.

The parent process may import torch so each forked job starts fast, but it never touches
CUDA: a CUDA context does not survive fork, so only the work-horse initialises the GPU.
"""

from __future__ import annotations

import argparse
import logging
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Worker

from app.config import load_settings
from jobs.context import log_with_job_ids


def wait_for_redis(url: str, timeout_s: float = 30.0) -> Redis:
    """Connect to Redis, waiting for it while `make run` starts it alongside us."""
    connection = Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection.ping()
            return connection
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and work the queues until stopped."""
    parser = argparse.ArgumentParser(description="Attune RQ worker")
    parser.add_argument("queues", nargs="+", help="queue names, highest priority first")
    parser.add_argument("--preload-torch", action="store_true", help="import torch up front")
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    log_with_job_ids(logging.INFO)
    settings = load_settings()
    if args.preload_torch:
        import torch  # noqa: F401  (import only; CUDA stays untouched in the parent)
    connection = wait_for_redis(settings.redis_url)
    worker = Worker(args.queues, connection=connection, name=args.name)
    worker.work(with_scheduler=True, burst=args.burst)


if __name__ == "__main__":
    main()
