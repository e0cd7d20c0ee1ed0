"""Billing jobs: report GPU overage to Stripe's meter, one ledger row at a time or swept."""

from __future__ import annotations

from app.billing import overage
from app.billing.stripe_gateway import GatewayError
from app.extensions import db
from jobs.context import app_context, job_logger

SWEEP_BATCH = 200


def report_overage(usage_id: int) -> str:
    """Settle one ledger row; raising on a Stripe failure lets RQ retry it (same identifier)."""
    with app_context():
        log = job_logger(__name__, f"report_overage usage {usage_id}")
        outcome = overage.report_overage(usage_id)
        log.info("%s", outcome)
        return outcome


def report_pending_overage() -> int:
    """Settle every unsettled ledger row; stops early while Stripe cannot be reached."""
    with app_context():
        log = job_logger(__name__, "report_pending_overage")
        settled = 0
        for usage_id in overage.pending_overage_ids(SWEEP_BATCH):
            try:
                outcome = overage.report_overage(usage_id)
            except GatewayError as exc:
                db.session.rollback()
                log.warning("usage %s: %s; will retry on the next sweep", usage_id, exc)
                break
            log.info("usage %s: %s", usage_id, outcome)
            settled += 1
        return settled
