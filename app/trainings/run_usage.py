"""This period's GPU time run by run, under each run's name: the billing page's usage table.

The ledger is billing's (app.billing.usage); the names are the runs'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.billing.models import GpuUsage
from app.billing.usage import QuotaStatus, in_period
from app.extensions import db
from app.trainings.models import TrainingRun


@dataclass(frozen=True)
class RunUsage:
    """Charged GPU seconds of one run this period: its training, or its try-it renders."""

    run_id: int | None
    name: str
    seconds: float
    last_at: datetime
    kind: str = "training"  # the ledger's kind: "training" or "generation" (try-it)


def usage_by_run(user_id: int, quota: QuotaStatus) -> list[RunUsage]:
    """Charged GPU seconds per run this period, training and try-it renders apart (so a run's
    line matches the GPU time its page shows), most recent first."""
    query = (
        select(
            GpuUsage.run_id,
            TrainingRun.name,
            GpuUsage.kind,
            func.sum(GpuUsage.gpu_seconds),
            func.max(GpuUsage.ended_at),
        )
        .outerjoin(TrainingRun, TrainingRun.id == GpuUsage.run_id)
        .where(*in_period(user_id, quota.period_start, None))
        .group_by(GpuUsage.run_id, TrainingRun.name, GpuUsage.kind)
        .order_by(func.max(GpuUsage.ended_at).desc())
    )
    return [
        RunUsage(run_id, name or "Deleted run", float(seconds), last_at, kind)
        for run_id, name, kind, seconds, last_at in db.session.execute(query)
    ]
