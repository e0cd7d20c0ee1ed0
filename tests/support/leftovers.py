"""Find what is left of a person after an erasure: every Redis key and every stored object.

A Footprint is taken from the database before the erasure (their ids, address and name);
afterwards each Redis key is read whole (strings, lists, hashes with RQ's job data unpacked,
sets, sorted sets, streams) and flagged when its name or content names one of those ids in
the way the app builds keys, or holds the address, the name or the storage prefix.
"""

from __future__ import annotations

import pickle
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from redis import Redis
from sqlalchemy import select

from app.extensions import db, get_storage


@dataclass
class Footprint:
    """What identifies one person's traces."""

    user_id: int
    email: str
    name: str
    runs: list[int] = field(default_factory=list)
    datasets: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    generations: list[int] = field(default_factory=list)
    exports: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)

    def patterns(self) -> list[re.Pattern[str]]:
        """How the app names keys and jobs after these ids (plus the plain personal data)."""
        uid = self.user_id
        texts = [
            re.escape(self.email),
            re.escape(self.name),
            rf"users/{uid}/",
            rf"account:{uid}[:/]",
            rf"delete-account-{uid}\b",
            rf"mail-{uid}-",
        ]
        texts += [rf"\brun[:-]{run}[:-]" for run in self.runs]
        texts += [rf"bucket-preview[:-]{d}[:-]" for d in self.datasets]
        texts += [rf"\bingest-{item}\b" for item in self.items]
        texts += [rf"\bgeneration[:-]{g}\b" for g in self.generations]
        texts += [rf"\bexport-{e}\b" for e in self.exports]
        texts += [rf"\bwebhook-{d}-" for d in self.deliveries]
        return [re.compile(text) for text in texts]


def footprint_of(app: Flask, user_id: int) -> Footprint:
    """The person's ids, address and name, read from the database."""
    from app.accounts.models import User
    from app.datasets.models import Dataset, DatasetItem
    from app.privacy.models import DataExport
    from app.trainings.models import Generation, TrainingRun
    from app.webhooks.models import WebhookDelivery

    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None

        def ids(column: object, owner: object) -> list[int]:
            return list(db.session.scalars(select(column).where(owner == user_id)))  # type: ignore[arg-type]

        datasets = ids(Dataset.id, Dataset.user_id)
        items = db.session.scalars(
            select(DatasetItem.id).where(DatasetItem.dataset_id.in_(datasets))
        )
        return Footprint(
            user_id=user_id,
            email=user.email,
            name=user.name,
            runs=ids(TrainingRun.id, TrainingRun.user_id),
            datasets=datasets,
            items=list(items),
            generations=ids(Generation.id, Generation.user_id),
            exports=ids(DataExport.id, DataExport.user_id),
            deliveries=ids(WebhookDelivery.id, WebhookDelivery.user_id),
        )


def redis_leftovers(redis: Redis, person: Footprint) -> dict[str, str]:
    """Every Redis key whose name or content is the person's: key -> what matched."""
    found = {}
    patterns = person.patterns()
    for raw_key in redis.scan_iter(count=1000):
        key = raw_key.decode()
        text = key + "\n" + _content(redis, raw_key)
        hits = [p.pattern for p in patterns if p.search(text)]
        if hits:
            found[key] = ", ".join(hits)
    return found


def _content(redis: Redis, key: bytes) -> str:
    """A key's whole value as text; RQ's pickled job data unpacked."""
    kind = redis.type(key).decode()
    if kind == "string":
        values = [redis.get(key) or b""]
    elif kind == "list":
        values = redis.lrange(key, 0, -1)
    elif kind == "set":
        values = list(redis.smembers(key))
    elif kind == "zset":
        values = redis.zrange(key, 0, -1)
    elif kind == "hash":
        fields = redis.hgetall(key)
        if b"data" in fields:
            fields[b"data"] = repr(pickle.loads(zlib.decompress(fields[b"data"]))).encode()
        values = [b"%s=%s" % pair for pair in fields.items()]
    elif kind == "stream":
        values = [repr(entry).encode() for entry in redis.xrange(key)]
    else:
        values = []
    return "\n".join(value.decode(errors="replace") for value in values)


def storage_leftovers(app: Flask, person: Footprint) -> list[str]:
    """Objects, object versions, unfinished uploads and (local backend) files or folders of
    the person: anything under users/<id>/ or naming it, except the records behind
    single-PUT URLs (see upload_url_records)."""
    from storage import LocalStorage

    prefix = f"users/{person.user_id}/"
    with app.app_context():
        storage = get_storage()
        left = [info.key for info in storage.list(prefix)]
        left += [f"upload {u.key}" for u in storage.list_multipart_uploads(prefix)]
        if isinstance(storage, LocalStorage):
            left += [path for path in _local_paths(storage.root, person) if not _url_record(path)]
    return left


def upload_url_records(app: Flask, person: Footprint) -> list[str]:
    """The local backend's records of single-PUT URLs for the person's keys: the server side
    of a presigned URL (the key and content type), kept until the URL lapses."""
    from storage import LocalStorage

    with app.app_context():
        storage = get_storage()
        if not isinstance(storage, LocalStorage):
            return []  # an S3 presigned URL leaves nothing on the server
        return [path for path in _local_paths(storage.root, person) if _url_record(path)]


def _url_record(path: str) -> bool:
    return path.startswith(".multipart/single/")


def _local_paths(root: Path, person: Footprint) -> list[str]:
    """Paths naming the person's prefix, or files whose content names it (upload records)."""
    mine = re.compile(rf"(^|/)users/{person.user_id}(/|$)")
    left = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        record = path.suffix == ".json" and path.is_file()
        names_it = record and f'"users/{person.user_id}/' in path.read_text("latin-1")
        if mine.search(relative) or (relative.startswith(".multipart/") and names_it):
            left.append(relative)
    return left
