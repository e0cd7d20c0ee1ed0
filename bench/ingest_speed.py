"""Ingest speed and the web process's share of an upload.

1. Images per second: ingest (copy out of the browser's reach, full decode, EXIF, WebP
   thumbnail, store) of N 12-megapixel JPEGs, one worker process, local storage, SQLite.
2. Web CPU seconds per GB uploaded: the app runs as its own process with SeaweedFS as S3; a
   client uploads files in presigned parts straight to SeaweedFS; the web process's CPU time
   (user + system, from /proc) is divided by the gigabytes sent. It should be near zero.

Run: .venv/bin/python bench/ingest_speed.py [--images 500] [--gigabytes 1 (0: ingest only)]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


def twelve_megapixel_jpegs(count: int) -> list[bytes]:
    """A few distinct 4000x3000 photos-like JPEGs (smooth gradients plus grain)."""
    rng = np.random.default_rng(0)
    images = []
    for index in range(count):
        y, x = np.mgrid[0:3000, 0:4000]
        base = ((x / 16 + y / 24 + index * 40) % 256).astype(np.uint8)
        grain = rng.integers(0, 24, (3000, 4000), dtype=np.uint8)
        pixels = np.stack([base, base // 2 + grain, 255 - base], axis=-1)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def bench_ingest(count: int) -> float:
    """Images per second for ingesting `count` 12 MP JPEGs in this process."""
    from app import create_app
    from app.accounts.models import User
    from app.datasets.models import Dataset, DatasetItem
    from app.db_types import utcnow
    from app.extensions import db, get_storage
    from jobs.datasets import ingest_item

    samples = twelve_megapixel_jpegs(8)
    with tempfile.TemporaryDirectory(prefix="attune-bench-") as tmp:
        app = create_app(
            {
                "env": "testing",
                "instance_path": Path(tmp),
                "secret_key": "bench-" + "x" * 40,
                "database_url": f"sqlite:///{tmp}/bench.db",
            }
        )
        with app.app_context():
            db.create_all()
            user = User(email="bench@example.com", name="Bench", adult_confirmed_at=utcnow())
            db.session.add(user)
            db.session.flush()
            dataset = Dataset(user_id=user.id, name="Bench")
            db.session.add(dataset)
            db.session.flush()
            items = []
            for index in range(count):
                item = DatasetItem(
                    dataset_id=dataset.id,
                    filename=f"{index}.jpg",
                    content_type="image/jpeg",
                    media_kind="image",
                    size_bytes=len(samples[index % len(samples)]),
                    storage_key="",
                    upload_key=f"{dataset.storage_prefix()}items/{index}/upload/original.jpg",
                    status="uploaded",
                )
                get_storage().put(item.upload_key, samples[index % len(samples)], "image/jpeg")
                items.append(item)
            db.session.add_all(items)
            db.session.commit()
            started = time.perf_counter()
            results = [ingest_item(item) for item in items]
            elapsed = time.perf_counter() - started
    assert results == ["ready"] * count, set(results)
    size = sum(len(s) for s in samples) / len(samples) / MB
    print(f"ingest: {count} x 12 MP JPEG (avg {size:.1f} MB) in {elapsed:.1f} s")
    return count / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_web_cpu(gigabytes: float) -> float:
    """The web process's CPU seconds per GB uploaded through presigned S3 parts."""
    from tests.support.processes import RedisServer, free_port, port_open, wait_until
    from tests.support.seaweedfs import SeaweedServer

    seaweed, redis = SeaweedServer(), RedisServer()
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="attune-bench-web-")
    env = {
        **os.environ,
        "ATTUNE_ENV": "testing",
        "ATTUNE_INSTANCE_PATH": tmp,
        "ATTUNE_SECRET_KEY": "bench-" + "x" * 40,
        "ATTUNE_DATABASE_URL": f"sqlite:///{tmp}/web.db",
        "ATTUNE_REDIS_URL": redis.url,
        "ATTUNE_BASE_URL": f"http://127.0.0.1:{port}",
        "ATTUNE_STORAGE_BACKEND": "s3",
        "ATTUNE_S3_BUCKET": "attune-bench",
        "ATTUNE_S3_ENDPOINT_URL": seaweed.endpoint_url,
        "ATTUNE_S3_ACCESS_KEY_ID": seaweed.access_key,
        "ATTUNE_S3_SECRET_ACCESS_KEY": seaweed.secret_key,
        "ATTUNE_S3_ADDRESSING_STYLE": "path",
        "ATTUNE_FREE_STORAGE_MB": str(int(gigabytes * 1024 * 4)),
    }
    server_code = (
        "from flask_migrate import upgrade; from werkzeug.serving import run_simple;"
        "from app import create_app; from app.extensions import get_storage;"
        "app = create_app(); ctx = app.app_context(); ctx.push(); upgrade();"
        "get_storage().ensure_bucket(); ctx.pop();"
        f"run_simple('127.0.0.1', {port}, app, threaded=True)"
    )
    web = subprocess.Popen(
        [sys.executable, "-c", server_code], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: port_open(port), 60, "web process")
        session, base = requests.Session(), f"http://127.0.0.1:{port}"
        dataset_id, headers = _sign_up_and_create(session, base)
        before = cpu_seconds(web.pid)
        sent = _upload(session, base, dataset_id, headers, int(gigabytes * 1024**3))
        used = cpu_seconds(web.pid) - before
    finally:
        web.terminate()
        web.wait(timeout=10)
        seaweed.stop()
        redis.stop()
    print(f"web: {sent / 1024**3:.2f} GB sent to S3 in 16 MB parts, web CPU {used:.2f} s")
    return used / (sent / 1024**3)


def _sign_up_and_create(session: requests.Session, base: str) -> tuple[int, dict[str, str]]:
    def token(html: str) -> str:
        match = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert match
        return match.group(1)

    page = session.get(f"{base}/sign-up").text
    session.post(
        f"{base}/sign-up",
        data={"csrf_token": token(page), "name": "Bench", "email": "bench@example.com",
              "password": "correct horse battery staple", "adult": "y"},
    )  # fmt: skip
    page = session.get(f"{base}/datasets").text
    created = session.post(f"{base}/datasets", data={"csrf_token": token(page), "name": "B"})
    headers = {"X-CSRFToken": token(session.get(f"{base}/dashboard").text)}
    return int(created.url.rsplit("/", 1)[-1]), headers


def _upload(
    session: requests.Session, base: str, dataset_id: int, headers: dict[str, str], total: int
) -> int:
    """Upload zips of 256 MB as the page would: create, sign each part, PUT, complete."""
    chunk = os.urandom(16 * MB)
    sent, index = 0, 0
    while sent < total:
        size = min(256 * MB, total - sent)
        target = session.post(
            f"{base}/api/datasets/{dataset_id}/uploads",
            json={"filename": f"part-{index}.zip", "size": size},
            headers=headers,
        ).json()
        item = f"{base}/api/datasets/{dataset_id}/uploads/{target['key']}"
        parts, offset, number = [], 0, 1
        while offset < size:
            body = chunk[: min(target["part_size"], size - offset)]
            url = session.get(f"{item}/parts/{number}").json()["url"]
            etag = requests.put(url, data=body, timeout=120).headers["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
            offset, number = offset + len(body), number + 1
        done = session.post(f"{item}/complete", json={"parts": parts}, headers=headers)
        assert done.status_code == 200, done.text
        sent, index = sent + size, index + 1
    return sent


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="0 skips measurement 2")
    args = parser.parse_args()
    rate = bench_ingest(args.images)
    print(f"RESULT ingest: {rate:.2f} images/s (12 MP JPEG, one worker process)")
    if args.gigabytes <= 0:
        return
    per_gb = bench_web_cpu(args.gigabytes)
    print(f"RESULT web CPU: {per_gb:.3f} CPU-seconds per GB uploaded through S3")


if __name__ == "__main__":
    main()
