"""Load test: locust (headless) against gunicorn started with the flags we ship, on loopback.

Run: .venv/bin/python bench/load_test.py [--users 50 200] [--duration 30]
                                          [--database sqlite|postgres] [--procfile Procfile]
                                          [--clients browser api]

Prepares a throw-away instance (a private Redis, SQLite or a private PostgreSQL, local
storage), seeds accounts that each have a studio plan, a dataset, a running run with live
progress in Redis (a --curve-points loss curve, 200 log lines), a queued run with its RQ job and a
finished run, and an API key; signs them in and hands their session cookies and keys to
bench/locustfile.py (browser users poll /api/runs/<id>, API clients /api/v1/trainings/<id>,
half and half of --users by default; --clients picks). Then it
starts the `web` command of the Procfile (bound to 127.0.0.1 instead of 0.0.0.0) and runs
locust once per user count. Prints requests/s, p50/p95/p99 and error rate per endpoint.
Everything listens on 127.0.0.1 and stops by itself after --duration seconds per level.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.processes import (  # noqa: E402
    VENV_BIN,
    PostgresServer,
    RedisServer,
    free_port,
    wait_until,
)

SECRET = "load-test-secret-" + "x" * 32
PASSWORD = "correct horse battery staple"


def web_command(procfile: Path, port: int) -> list[str]:
    """The Procfile's `web` command with the port filled in and bound to loopback only."""
    line = next(ln for ln in procfile.read_text().splitlines() if ln.startswith("web:"))
    command = line.split(":", 1)[1].strip()
    command = command.replace("${PORT:-8000}", str(port)).replace("0.0.0.0", "127.0.0.1")
    command = command.replace("${WEB_CONCURRENCY:-4}", os.environ.get("WEB_CONCURRENCY", "4"))
    command = command.replace("${WEB_THREADS:-1}", os.environ.get("WEB_THREADS", "1"))
    if "127.0.0.1:5000" in command:  # Procfile.dev binds a fixed port
        command = command.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    parts = shlex.split(command)
    return [str(VENV_BIN / parts[0]), *parts[1:]]


def seed(app: Any, accounts: int, points: int = 500) -> list[dict[str, Any]]:
    """Accounts with runs in every state; returns their sessions for the locustfile."""
    from app.accounts.models import User
    from app.accounts.passwords import hash_password
    from app.apikeys.services import create_key
    from app.billing.models import Subscription
    from app.datasets.models import Dataset, DatasetItem
    from app.db_types import utcnow
    from app.extensions import db, get_redis
    from app.queues import enqueue_task
    from app.trainings.models import TrainingRun
    from app.trainings.services import LOG_KEY, LOSS_KEY, PROGRESS_KEY

    password_hash, now, sessions = hash_password(PASSWORD), utcnow(), []
    with app.app_context():
        redis = get_redis()
        for n in range(accounts):
            user = User(email=f"load{n}@example.com", name=f"Load {n}",
                        password_hash=password_hash, adult_confirmed_at=now)  # fmt: skip
            db.session.add(user)
            db.session.flush()
            db.session.add(Subscription(user_id=user.id, plan="studio", status="active",
                                        current_period_start=now, current_period_end=now.replace(
                                            year=now.year + 1)))  # fmt: skip
            dataset = Dataset(user_id=user.id, name="Load", trigger_word="sks")
            db.session.add(dataset)
            db.session.flush()
            for i in range(5):
                db.session.add(DatasetItem(dataset_id=dataset.id, filename=f"{i}.jpg",
                                           storage_key=f"{dataset.storage_prefix()}items/{i}/o.jpg",
                                           content_type="image/jpeg", media_kind="image",
                                           status="ready", size_bytes=2_400_000, width=1024,
                                           height=1024))  # fmt: skip
            curve = [[s, 0.5 / (1 + s / 100)] for s in range(1, points + 1)]
            runs = {
                status: TrainingRun(
                    user_id=user.id,
                    dataset_id=dataset.id,
                    name=status,
                    family="tiny-sd",
                    preset="character",
                    config={"steps": 2000},
                    total_steps=2000,
                    queue="gpu-cpu",
                    status=status,
                    step=500 if status == "running" else 0,
                )
                for status in ("running", "queued", "succeeded")
            }
            runs["succeeded"].artifacts = {
                "loss_curve": curve[:: max(1, len(curve) // 500)],  # as the worker stores it
                "lora": "k/lora.safetensors", "comfyui": "k/c.safetensors",
                "samples": [f"k/samples/s{i}.png" for i in range(8)],
                "checkpoints": {str(s): f"k/ckpt/{s}" for s in (500, 1000, 1500, 2000)},
            }  # fmt: skip
            db.session.add_all(runs.values())
            db.session.commit()
            running, queued = runs["running"], runs["queued"]
            pipe = redis.pipeline()
            pipe.set(PROGRESS_KEY.format(run_id=running.id),
                     json.dumps({"step": 500, "total_steps": 2000, "loss": 0.1,
                                 "eta_seconds": 900}))  # fmt: skip
            pipe.rpush(LOSS_KEY.format(run_id=running.id), *[f"{s}:{v:.6g}" for s, v in curve])
            pipe.rpush(LOG_KEY.format(run_id=running.id),
                       *[f"12:00:{i % 60:02d} step {i} loss 0.1" for i in range(200)])  # fmt: skip
            pipe.execute()
            job = enqueue_task("jobs.training.run", queued.id, queue="gpu-cpu", timeout_s=3600,
                               job_id=f"run-{queued.id}-1")  # fmt: skip
            queued.job_id = job.id
            db.session.commit()
            _, api_key = create_key(user, "load test", "read")
            sessions.append({"email": user.email, "dataset_id": dataset.id, "api_key": api_key,
                             "run_ids": [r.id for r in runs.values()]})  # fmt: skip
    for session in sessions:
        session.update(sign_in(app, session["email"]))
    return sessions


def sign_in(app: Any, email: str) -> dict[str, str]:
    """A session cookie and CSRF token, signed in through the real form."""
    import re

    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    answer = client.post("/sign-in", data={"csrf_token": token.group(1), "email": email,
                                           "password": PASSWORD})  # fmt: skip
    assert answer.status_code == 302, answer.status_code
    dashboard = client.get("/dashboard").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', dashboard)
    cookie = client.get_cookie("session")
    assert csrf and cookie
    return {"cookie": cookie.value, "token": csrf.group(1)}


USER_CLASSES = {"browser": "Person", "api": "ApiClient"}


def run_locust(
    host: str, users: int, duration: int, sessions: Path, out: Path, clients: list[str]
) -> list[dict]:
    """One headless locust run; returns the per-endpoint rows of its stats CSV."""
    prefix = out / f"users{users}"
    command = [
        str(VENV_BIN / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", str(max(1, users // 4)), "-t", f"{duration}s", "--host", host,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "5",
        *[USER_CLASSES[name] for name in clients],
    ]  # fmt: skip
    env = {**os.environ, "ATTUNE_LOAD_SESSIONS": str(sessions)}
    with open(out / f"locust-{users}.log", "w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                       timeout=duration + 120, check=False)  # fmt: skip
    with open(f"{prefix}_stats.csv") as handle:
        return list(csv.DictReader(handle))


def server_times(access: Path, start: int) -> dict[str, list[int]]:
    """Milliseconds gunicorn spent per request since byte `start` of its log, by endpoint."""
    import re

    times: dict[str, list[int]] = {}
    with open(access) as handle:
        handle.seek(start)
        for line in handle:
            _, path, _, millis = line.split()
            name = re.sub(r"/\d+", "/[id]", path)
            for key in (name, "Aggregated"):
                times.setdefault(key, []).append(int(millis))
    return times


def _percentile(values: list[int], share: float) -> int | str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarize(users: int, rows: list[dict], server: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Requests/s, p50/p95/p99 (ms, client side and server side) and error rate per endpoint."""
    results = []
    for row in rows:
        count, failures = int(row["Request Count"]), int(row["Failure Count"])
        own = server.get(row["Name"], [])
        results.append({
            "users": users, "endpoint": row["Name"], "requests": count,
            "rps": round(float(row["Requests/s"]), 1), "p50_ms": row["50%"],
            "p95_ms": row["95%"], "p99_ms": row["99%"],
            "max_ms": round(float(row["Max Response Time"])),
            "error_rate": f"{failures / count * 100:.2f}%" if count else "n/a",
            "server_p50_ms": _percentile(own, 0.50), "server_p99_ms": _percentile(own, 0.99),
        })  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--duration", type=int, default=30, help="seconds per user count")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument(
        "--curve-points",
        type=int,
        default=500,
        help="loss points of each running run (a run keeps up to 5,000)",
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--procfile", default="Procfile", help="Procfile or Procfile.dev")
    parser.add_argument(
        "--clients", nargs="+", choices=sorted(USER_CLASSES), default=["browser", "api"],
        help="who polls: browser users, API clients with a key, or both (equal shares)",
    )  # fmt: skip
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="attune-load-"))
    instance, redis, postgres, web = out / "instance", RedisServer(), None, None
    try:
        if args.database == "postgres":
            postgres = PostgresServer()
            database_url = postgres.create_database("attune_load")
        else:
            database_url = f"sqlite:///{instance / 'attune.db'}"
        port = free_port()
        settings = {"ATTUNE_ENV": "development", "ATTUNE_INSTANCE_PATH": str(instance),
                    "ATTUNE_SECRET_KEY": SECRET, "ATTUNE_DATABASE_URL": database_url,
                    "ATTUNE_REDIS_URL": redis.url,
                    "ATTUNE_BASE_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
        os.environ.update(settings)
        from flask_migrate import upgrade

        from app import create_app

        app = create_app()
        with app.app_context():
            upgrade()
        sessions = out / "sessions.json"
        sessions.write_text(json.dumps(seed(app, args.accounts, args.curve_points)))
        command = web_command(ROOT / args.procfile, port)
        access = out / "access.log"
        # Logging only: the server's own time per request (%(M)s ms), to tell the app's
        # latency apart from a client and server fighting for the same two cores.
        command += [
            "--access-logfile",
            str(access),
            "--access-logformat",
            "%(m)s %(U)s %(s)s %(M)s",
        ]
        print("web:", " ".join(command[1:]) if command else "", flush=True)
        with open(out / "gunicorn.log", "w") as log:
            web = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **settings}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        host = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(host), 60, "gunicorn")
        run_locust(host, 20, 8, sessions, out, args.clients)  # warm-up, not counted
        results = []
        for users in args.users:
            mark = access.stat().st_size if access.exists() else 0
            rows = run_locust(host, users, args.duration, sessions, out, args.clients)
            results += summarize(users, rows, server_times(access, mark))
            time.sleep(2)
        _print(results, args)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        print(f"logs and CSVs: {out}")
    finally:
        if web is not None:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(timeout=30)
        redis.stop()
        if postgres is not None:
            postgres.stop()


def _healthy(host: str) -> bool:
    try:
        with urllib.request.urlopen(host + "/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _print(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    print(f"\ndatabase={args.database} procfile={args.procfile} duration={args.duration}s "
          f"clients={'+'.join(args.clients)} "
          f"accounts={args.accounts} curve={args.curve_points} cpus={os.cpu_count()} "
          f"load={load:.1f}")  # fmt: skip
    print("| users | endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors "
          "| server p50 / p99 ms |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['users']} | {r['endpoint']} | {r['requests']} | {r['rps']} | {r['p50_ms']} "
              f"| {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['error_rate']} "
              f"| {r['server_p50_ms']} / {r['server_p99_ms']} |")  # fmt: skip


if __name__ == "__main__":
    main()
