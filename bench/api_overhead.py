"""CPU per request of the run-status poll: the browser's GET /api/runs/<id> (session cookie)
against the API's GET /api/v1/trainings/<id> (Bearer key), in process, side by side.

Run: .venv/bin/python bench/api_overhead.py [--requests 300] [--database sqlite|postgres]

Seeds the same accounts as bench/load_test.py (a running run with live progress in Redis, a
queued run with its RQ job, a finished run) and calls both routes through the Flask test
client, alternating in blocks of 20 so machine load hits both alike. Prints the median and
p90 of process CPU milliseconds per request for each run state, and the response size. This
is the app's own cost (no HTTP, no gunicorn): compare it with load_test.py's figures, which
include the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_test import SECRET, seed  # noqa: E402
from tests.support.processes import PostgresServer, RedisServer  # noqa: E402

BLOCK = 20


def measure(client: Any, path: str, headers: dict[str, str], count: int) -> tuple[list[float], int]:
    """CPU milliseconds of `count` GETs of `path`, and the size of the last answer."""
    times, size = [], 0
    for _ in range(count):
        started = time.process_time()
        response = client.get(path, headers=headers)
        times.append((time.process_time() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        size = len(response.data)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per route and run state")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="attune-api-overhead-"))
    redis, postgres = RedisServer(), None
    try:
        if args.database == "postgres":
            postgres = PostgresServer()
            database_url = postgres.create_database("attune_overhead")
        else:
            database_url = f"sqlite:///{out / 'attune.db'}"
        os.environ.update({"ATTUNE_ENV": "development", "ATTUNE_INSTANCE_PATH": str(out),
                           "ATTUNE_SECRET_KEY": SECRET, "ATTUNE_DATABASE_URL": database_url,
                           "ATTUNE_REDIS_URL": redis.url})  # fmt: skip
        from flask_migrate import upgrade

        from app import create_app

        app = create_app({"api_requests_per_minute": 10**9})
        with app.app_context():
            upgrade()
        account = seed(app, 1)[0]
        _report(app, account, args)
    finally:
        redis.stop()
        if postgres is not None:
            postgres.stop()


def _report(app: Any, account: dict[str, Any], args: argparse.Namespace) -> None:
    browser = app.test_client()
    browser.set_cookie("session", account["cookie"])
    api = app.test_client(use_cookies=False)
    key = {"Authorization": f"Bearer {account['api_key']}"}
    print(f"database={args.database} requests={args.requests} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| run | route | CPU ms p50 | CPU ms p90 | bytes |")
    print("| --- | --- | --- | --- | --- |")
    for state, run_id in zip(("running", "queued", "succeeded"), account["run_ids"], strict=True):
        routes = {
            "GET /api/runs/<id> (session)": (browser, f"/api/runs/{run_id}", {}),
            "GET /api/v1/trainings/<id> (key)": (api, f"/api/v1/trainings/{run_id}", key),
        }
        results: dict[str, tuple[list[float], int]] = {name: ([], 0) for name in routes}
        for client, path, headers in routes.values():
            measure(client, path, headers, 5)  # warm caches
        for _ in range(max(1, args.requests // BLOCK)):
            for name, (client, path, headers) in routes.items():
                times, size = measure(client, path, headers, BLOCK)
                results[name] = (results[name][0] + times, size)
        for name, (times, size) in results.items():
            p90 = statistics.quantiles(times, n=10)[-1]
            print(f"| {state} | {name} | {statistics.median(times):.2f} | {p90:.2f} | {size} |")


if __name__ == "__main__":
    main()
