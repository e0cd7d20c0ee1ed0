"""Idempotency-Key for the POSTs that start runs: a retried request gets the run it made.

Keys are per account and kept 24 hours. The first request claims the key (a unique row),
creates the run and records its id in the same transaction as the run itself. A retry with
the same key and the same request gets that run back and reserves nothing; the same key with
another request is refused (422); a retry racing the first one gets 409 and retries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.api_v1.models import IdempotencyKey
from app.db_types import utcnow
from app.extensions import db
from app.trainings.models import TrainingRun
from app.trainings.services import get_run

KEEP = timedelta(hours=24)
# A claim without a run this old was left by a request that died: it may be taken over.
ABANDONED_AFTER = timedelta(seconds=60)
MAX_KEY_CHARS = 255

Create = Callable[[Callable[[TrainingRun], None] | None], TrainingRun]


class KeyReused(Exception):
    """The key was used for a different request within 24 hours."""


class StillRunning(Exception):
    """The first request with this key has not finished yet."""


def key_problem(key: str) -> str | None:
    """Why a sent Idempotency-Key cannot be used, or None."""
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        return f"Use 1 to {MAX_KEY_CHARS} printable ASCII characters, e.g. a UUID."
    return None


def fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """What makes two requests "the same": method, path and the JSON body, key order aside."""
    text = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_once(user: User, key: str | None, print_: str, create: Create) -> tuple[TrainingRun, bool]:
    """The run `create` makes, or the one an earlier request with `key` made; True if replayed."""
    if key is None:
        return create(None), False
    claim = _claim(user, key, print_, utcnow())
    if isinstance(claim, int):
        return get_run(user, claim), True
    claim_id = claim.id

    def record(run: TrainingRun) -> None:
        claim.run_id = run.id

    try:
        return create(record), False
    except Exception:
        # Nothing was made: free the key, so the corrected request can be sent with it.
        db.session.rollback()
        db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
        db.session.commit()
        raise


def _claim(user: User, key: str, print_: str, now: datetime) -> IdempotencyKey | int:
    """A fresh claim row this request owns, or the id of the run the key already made."""
    for _ in range(3):  # an expired or abandoned row is replaced, then looked at again
        row = db.session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == user.id, IdempotencyKey.key == key
            )
        )
        if row is None:
            row = IdempotencyKey(user_id=user.id, key=key, fingerprint=print_, created_at=now)
            db.session.add(row)
            try:
                db.session.commit()
            except IntegrityError:  # another request with this key won the insert
                db.session.rollback()
                continue
            return row
        if row.created_at <= now - KEEP:
            _replace_if_unchanged(row, delete(IdempotencyKey))
            continue
        if row.fingerprint != print_:
            raise KeyReused
        if row.run_id is not None:
            return row.run_id
        if row.created_at > now - ABANDONED_AFTER:
            raise StillRunning
        if _replace_if_unchanged(row, update(IdempotencyKey).values(created_at=now)):
            db.session.refresh(row)
            return row
    raise StillRunning


def _replace_if_unchanged(row: IdempotencyKey, statement: Any) -> bool:
    """Apply `statement` to the row unless another request changed it first."""
    result = db.session.execute(
        statement.where(
            IdempotencyKey.id == row.id,
            IdempotencyKey.run_id.is_(None)
            if row.run_id is None
            else IdempotencyKey.run_id == row.run_id,
            IdempotencyKey.created_at == row.created_at,
        ).execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def forget_expired_keys(now: datetime | None = None) -> int:
    """Delete keys older than 24 hours; returns how many."""
    result = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= (now or utcnow()) - KEEP)
    )
    db.session.commit()
    return result.rowcount
