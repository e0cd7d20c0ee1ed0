"""Every object key Attune stores, built here and only here, from ids the server owns.

Layout (one prefix per person, so erasing a person is one prefix):

    users/{user}/datasets/{dataset}/items/{item}/upload/{random}{ext}    the browser's bytes
                                                 accepted/original{ext}  the checked copy
                                                 thumbnail.webp
                                                 entries/{n}/original{ext}, thumbnail.webp
    users/{user}/runs/{run}/lora/{file}
                            checkpoints/step-{step:06d}/{file}
                            samples/{file}
                            captions.txt                         the captions it trained
    users/{user}/media/generations/{generation}/{file}
    users/{user}/exports/{export}/{file}

Nothing a person sends becomes part of a key: names of files come from the engine or from
the server ({random} is a server-made token, {ext} an extension ingest checked against an
allow-list).
"""

from __future__ import annotations

import re

UPLOAD_FOLDER = "upload/"  # the only folder ever presigned for writing
ACCEPTED_FOLDER = "accepted/"  # where ingest copies the bytes it checks; never presigned
THUMBNAIL = "thumbnail.webp"
CHECKPOINTS = "checkpoints"
USERS = "users/"  # every object lives under its owner's prefix
_OWNER = re.compile(r"users/(\d+)/")


def user_prefix(user_id: int) -> str:
    """Everything stored for one person."""
    return f"{USERS}{user_id}/"


def owner_of(key: str) -> int | None:
    """The id of the person a key belongs to, or None for a key outside every person's prefix."""
    match = _OWNER.match(key)
    return None if match is None else int(match.group(1))


def datasets_prefix(user_id: int) -> str:
    """All of a person's datasets."""
    return f"{user_prefix(user_id)}datasets/"


def dataset_prefix(user_id: int, dataset_id: int) -> str:
    """One dataset's objects."""
    return f"{datasets_prefix(user_id)}{dataset_id}/"


def item_prefix(user_id: int, dataset_id: int, item_id: int) -> str:
    """One item's objects: its upload, checked original, thumbnail and unpacked entries."""
    return f"{dataset_prefix(user_id, dataset_id)}items/{item_id}/"


def item_upload(item: str, token: str, extension: str) -> str:
    """The key a browser's bytes are presigned to, inside the item prefix `item`."""
    return f"{item}{UPLOAD_FOLDER}{token}{extension}"


def item_accepted(item: str, extension: str) -> str:
    """The checked copy of an item's bytes, inside the item prefix `item`."""
    return f"{item}{ACCEPTED_FOLDER}original{extension}"


def item_thumbnail(item: str) -> str:
    """An item's thumbnail, inside the item prefix `item`."""
    return f"{item}{THUMBNAIL}"


def archive_entries(item: str) -> str:
    """Where the entries unpacked from the zip item `item` live."""
    return f"{item}entries/"


def archive_entry(item: str, number: int) -> str:
    """The prefix of the zip item's entry `number`; it holds an original and a thumbnail."""
    return f"{archive_entries(item)}{number}/"


def entry_original(entry: str, extension: str) -> str:
    """An unpacked entry's bytes, inside the entry prefix `entry`."""
    return f"{entry}original{extension}"


def is_upload_key(key: str) -> bool:
    """True for a key in some item's upload folder: bytes a browser sent, not yet (or never)
    checked, which nothing may read as an item's data."""
    folder, _, _ = key.rpartition("/")
    parent, _, name = folder.rpartition("/")
    return f"{name}/" == UPLOAD_FOLDER and parent.rpartition("/")[0].endswith("/items")


def run_prefix(user_id: int, run_id: int) -> str:
    """One training run's objects."""
    return f"{user_prefix(user_id)}runs/{run_id}/"


def run_lora(run: str, filename: str) -> str:
    """A final LoRA file of the run with prefix `run`."""
    return f"{run}lora/{filename}"


def run_checkpoint(run: str, step: int) -> str:
    """The folder of the run's checkpoint at `step`."""
    return f"{run}{CHECKPOINTS}/step-{step:06d}/"


def run_samples(run: str) -> str:
    """Where the run's samples live."""
    return f"{run}samples/"


def run_sample(run: str, filename: str) -> str:
    """One sample image or clip of the run."""
    return f"{run_samples(run)}{filename}"


def run_captions(run: str) -> str:
    """The captions.txt of the run with prefix `run`: each file and the caption it trained."""
    return f"{run}captions.txt"


def media_prefix(user_id: int) -> str:
    """A person's generated media (try-it renders)."""
    return f"{user_prefix(user_id)}media/"


def generation_prefix(user_id: int, generation_id: int) -> str:
    """One try-it render's files."""
    return f"{media_prefix(user_id)}generations/{generation_id}/"


def exports_prefix(user_id: int) -> str:
    """All of a person's data exports."""
    return f"{user_prefix(user_id)}exports/"


def export_prefix(user_id: int, export_id: int) -> str:
    """One data export's files."""
    return f"{exports_prefix(user_id)}{export_id}/"


def child(prefix: str, filename: str) -> str:
    """A file directly inside `prefix` (a name the engine or the server chose)."""
    return f"{prefix}{filename}"
