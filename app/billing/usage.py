"""GPU time against the plan: the quota of a period, and the ledger by day, month and run id.

The ledger under each run's name (the billing page's table) is app.trainings.run_usage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, func, select

from app.billing.models import GpuUsage
from app.extensions import db

MAX_CHART_DAYS = 62


@dataclass(frozen=True)
class QuotaStatus:
    """GPU seconds allowed, used and held this period; reservations can be added on top."""

    period_start: datetime
    period_end: datetime
    allowance_s: float
    used_s: float
    reserved_s: float = 0.0
    overage_allowed: bool = False

    @property
    def left_s(self) -> float:
        """Seconds still inside the allowance after usage and reservations."""
        return max(0.0, self.allowance_s - self.used_s - self.reserved_s)

    @property
    def over_s(self) -> float:
        """Seconds beyond the allowance (billed as overage where the plan allows it)."""
        return max(0.0, self.used_s - self.allowance_s)

    @property
    def used_fraction(self) -> float:
        """Share of the allowance used, 0..1, for progress bars."""
        return min(1.0, self.used_s / self.allowance_s) if self.allowance_s else 0.0

    def with_reserved(self, seconds: float) -> QuotaStatus:
        """The same status with `seconds` more held by unfinished runs."""
        return replace(self, reserved_s=self.reserved_s + seconds)


@dataclass(frozen=True)
class DayUsage:
    """Charged GPU seconds on one day (UTC)."""

    day: date
    seconds: float


@dataclass(frozen=True)
class MonthUsage:
    """Charged GPU seconds in one calendar month (UTC) before the current period."""

    month: date  # its first day
    seconds: float


def format_gpu_time(seconds: float) -> str:
    """GPU time as people read it: "20 s" below a minute (a short run is not "0 min"), "45 min"
    below an hour, "2.5 h" above. Every page that shows GPU time uses this."""
    if seconds <= 0:
        return "0 min"
    if seconds < 59.5:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month around `now`: the period of people without a subscription."""
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def in_period(
    user_id: int, period_start: datetime, until: datetime | None
) -> list[ColumnElement[bool]]:
    """Ledger rows that count against a period: charged, started at or after its start.

    A period has no upper bound until the next one opens (invoice.paid moves period_start),
    so the quota never resets before the renewal is paid.
    """
    conditions = [
        GpuUsage.user_id == user_id,
        GpuUsage.charged.is_(True),
        GpuUsage.started_at >= period_start,
    ]
    if until is not None:
        conditions.append(GpuUsage.started_at < until)
    return conditions


def period_used_seconds(
    user_id: int, period_start: datetime, until: datetime | None = None
) -> float:
    """Charged GPU seconds in the ledger for the period starting at `period_start`."""
    query = select(func.coalesce(func.sum(GpuUsage.gpu_seconds), 0.0))
    return float(db.session.scalar(query.where(*in_period(user_id, period_start, until))) or 0)


def usage_by_day(user_id: int, quota: QuotaStatus, now: datetime) -> list[DayUsage]:
    """One bar per day of the period, days to come included (the last MAX_CHART_DAYS at most)."""
    first = quota.period_start.date()
    # A renewal not paid yet keeps the period open past its end: show those days too.
    last = max((quota.period_end - timedelta(microseconds=1)).date(), now.date())
    if (last - first).days >= MAX_CHART_DAYS:
        last = min(last, max(now.date(), first + timedelta(days=MAX_CHART_DAYS - 1)))
        first = last - timedelta(days=MAX_CHART_DAYS - 1)
    totals: dict[date, float] = {}
    rows = db.session.execute(
        select(GpuUsage.started_at, GpuUsage.gpu_seconds).where(
            *in_period(user_id, quota.period_start, None)
        )
    )
    for started_at, seconds in rows:
        day = started_at.astimezone(UTC).date()
        totals[day] = totals.get(day, 0.0) + seconds
    days = (last - first).days + 1
    return [
        DayUsage(first + timedelta(days=i), totals.get(first + timedelta(days=i), 0.0))
        for i in range(days)
    ]


def run_gpu_seconds(run_id: int, kind: str) -> float:
    """Charged GPU seconds the ledger holds for one run's training or its try-it renders."""
    query = select(func.coalesce(func.sum(GpuUsage.gpu_seconds), 0.0)).where(
        GpuUsage.run_id == run_id, GpuUsage.kind == kind, GpuUsage.charged.is_(True)
    )
    return float(db.session.scalar(query) or 0)


def usage_before(user_id: int, period_start: datetime, months: int = 12) -> list[MonthUsage]:
    """Charged GPU seconds per calendar month before `period_start`, newest first: the
    history that stays visible after a plan ended or a new subscription began."""
    query = select(GpuUsage.started_at, GpuUsage.gpu_seconds).where(
        GpuUsage.user_id == user_id,
        GpuUsage.charged.is_(True),
        GpuUsage.started_at < period_start,
    )
    totals: dict[date, float] = {}
    for started_at, seconds in db.session.execute(query):
        month = started_at.astimezone(UTC).date().replace(day=1)
        totals[month] = totals.get(month, 0.0) + seconds
    return [MonthUsage(month, totals[month]) for month in sorted(totals, reverse=True)[:months]]


def period_settled_overage(
    user_id: int, period_start: datetime, until: datetime | None = None
) -> float:
    """Overage seconds already settled (sent to the meter) for the period's ledger rows."""
    query = select(func.coalesce(func.sum(GpuUsage.overage_s), 0.0)).where(
        *in_period(user_id, period_start, until), GpuUsage.reported_at.is_not(None)
    )
    return float(db.session.scalar(query) or 0)
