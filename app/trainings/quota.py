"""GPU quota: reserve a run's estimate at start, release it exactly once at the end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.billing.services import Standing
from app.billing.usage import QuotaStatus
from app.extensions import db
from app.plans import Plan
from app.trainings.models import QuotaPeriod, TrainingRun


class QuotaError(Exception):
    """The run does not fit the plan right now; the message says why."""


def period_quota(account: Standing) -> QuotaStatus:
    """This period's allowance, charged use and the seconds unfinished runs hold."""
    status = account.quota
    return status.with_reserved(reserved_gpu_seconds(account.user_id, status.period_start))


def reserved_gpu_seconds(user_id: int, period_start: datetime) -> int:
    """Seconds held by this period's unfinished runs."""
    query = select(QuotaPeriod.reserved_seconds).where(
        QuotaPeriod.user_id == user_id, QuotaPeriod.period_start == period_start
    )
    return int(db.session.scalar(query) or 0)


def reserve_gpu_quota(run: TrainingRun, account: Standing, seconds: int) -> None:
    """Hold `seconds` of this period's quota and one concurrent slot for `run`, or refuse.

    One conditional UPDATE decides, so concurrent starts cannot overshoot either limit.
    The caller commits (the run row and the reservation land in one transaction).
    """
    plan, status = account.plan, account.quota
    if plan is None:
        raise QuotaError(account.reason or "Starting a run needs an active plan.")
    start, user_id = status.period_start, account.user_id
    _ensure_period_row(user_id, start)
    conditions = [
        QuotaPeriod.user_id == user_id,
        QuotaPeriod.period_start == start,
        QuotaPeriod.active_runs < plan.concurrent_runs,
    ]
    if not plan.overage:
        room = plan.gpu_seconds - status.used_s - seconds
        conditions.append(QuotaPeriod.reserved_seconds <= room)
    result = db.session.execute(
        update(QuotaPeriod)
        .where(*conditions)
        .values(
            reserved_seconds=QuotaPeriod.reserved_seconds + seconds,
            active_runs=QuotaPeriod.active_runs + 1,
        )
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise QuotaError(_refusal(user_id, plan, status, seconds))
    run.period_start, run.reservation_open, run.reserved_gpu_seconds = start, True, seconds


def release_reservation(run: TrainingRun) -> None:
    """Give the run's reservation and slot back; a second call does nothing."""
    claimed = db.session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run.id, TrainingRun.reservation_open.is_(True))
        .values(reservation_open=False)
    )
    if claimed.rowcount == 1 and run.period_start is not None:
        db.session.execute(
            update(QuotaPeriod)
            .where(QuotaPeriod.user_id == run.user_id, QuotaPeriod.period_start == run.period_start)
            .values(
                reserved_seconds=QuotaPeriod.reserved_seconds - run.reserved_gpu_seconds,
                active_runs=QuotaPeriod.active_runs - 1,
            )
        )
    db.session.commit()
    db.session.refresh(run)


def _ensure_period_row(user_id: int, start: datetime) -> None:
    """Create the period's row unless it exists; concurrent creators do not collide."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(QuotaPeriod).values(
        user_id=user_id, period_start=start, reserved_seconds=0, active_runs=0
    )
    db.session.execute(statement.on_conflict_do_nothing(index_elements=["user_id", "period_start"]))


def _refusal(user_id: int, plan: Plan, status: QuotaStatus, seconds: int) -> str:
    current = db.session.scalar(
        select(QuotaPeriod).where(
            QuotaPeriod.user_id == user_id, QuotaPeriod.period_start == status.period_start
        )
    )
    if current is not None and current.active_runs >= plan.concurrent_runs:
        return (
            f"Your {plan.label} plan runs {plan.concurrent_runs} training run(s) at a time. "
            "Wait for one to finish or cancel it."
        )
    left = plan.gpu_seconds - status.used_s - (current.reserved_seconds if current else 0)
    return (
        f"This run needs about {seconds / 60:.0f} GPU minutes but only "
        f"{max(left, 0) / 60:.0f} are left this period. Lower the steps or upgrade your plan."
    )
