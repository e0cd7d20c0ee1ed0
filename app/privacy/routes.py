"""The privacy policy, "my data" (export, early deletion, receipts) and account deletion."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response

from app.accounts.google import is_enabled as google_enabled
from app.accounts.google import recently_reauthenticated
from app.accounts.services import accept_policy
from app.billing.deletion_dates import RetentionSchedule, retention_schedule
from app.extensions import limiter
from app.privacy import services
from app.privacy.deletion import REASONS, DeletionError
from app.privacy.exports import ExportError, export_download_url, request_export
from app.privacy.notices import GROUP_WORDS
from app.privacy_policy import (
    EXPORT_RETENTION,
    LORA_RETENTION,
    MEDIA_RETENTION,
    POLICY_DATE,
    POLICY_VERSION,
)

bp = Blueprint("privacy", __name__)


@bp.app_context_processor
def privacy_context() -> dict[str, Any]:
    """Template helpers: the policy-change notice and the person's deletion dates."""
    return {
        "policy_version": POLICY_VERSION,
        "policy_notice": _policy_notice,
        "deletion_dates": _deletion_dates,
    }


def _policy_notice() -> bool:
    return bool(current_user.is_authenticated and current_user.policy_version != POLICY_VERSION)


def _deletion_dates() -> RetentionSchedule | None:
    """Computed once per request, only for signed-in pages that show a date."""
    if not current_user.is_authenticated:
        return None
    if "deletion_dates" not in g:
        g.deletion_dates = retention_schedule(current_user)
    return g.deletion_dates


@bp.route("/privacy")
def policy() -> str:
    """What we collect, why, for how long, and your rights."""
    return render_template(
        "privacy/policy.html",
        version=POLICY_VERSION,
        date=POLICY_DATE,
        media_days=MEDIA_RETENTION.days,
        lora_days=LORA_RETENTION.days,
        export_days=EXPORT_RETENTION.days,
    )


@bp.route("/privacy/accept", methods=["POST"])
@login_required
def accept() -> Response:
    """Acknowledge the current policy version (hides the change notice)."""
    accept_policy(current_user)
    return redirect(
        url_for("privacy.my_data")
        if request.form.get("to") == "my-data"
        else url_for("pages.dashboard")
    )


@bp.route("/my-data")
@login_required
def my_data() -> str:
    """Everything held about the person, exports, deletion dates and receipts."""
    return render_template(
        "privacy/my_data.html",
        data=services.my_data(current_user),
        reasons=REASONS,
        group_words=GROUP_WORDS,
    )


@bp.route("/my-data/exports", methods=["POST"])
@login_required
@limiter.limit("5 per hour")
def create_export() -> Response:
    """Start an export of all the person's data."""
    try:
        request_export(current_user)
    except ExportError as exc:
        flash(str(exc), "error")
    else:
        flash("Your export is being prepared. We will e-mail you when it is ready.", "info")
    return redirect(url_for("privacy.my_data"))


@bp.route("/my-data/exports/<int:export_id>/download")
@login_required
def download_export(export_id: int) -> Response:
    """A short-lived download link for one of the person's exports."""
    try:
        return redirect(export_download_url(current_user, export_id))
    except ExportError as exc:
        flash(str(exc), "error")
        return redirect(url_for("privacy.my_data"))


@bp.route("/my-data/delete", methods=["POST"])
@login_required
@limiter.limit("30 per hour")
def delete_now() -> Response:
    """Delete a dataset, a run's files or all files now, instead of waiting for retention."""
    scope = request.form.get("scope", "")
    target = request.form.get("target_id", "")
    if target and not target.isdigit():
        flash("That deletion request is not valid.", "error")
        return redirect(url_for("privacy.my_data"))
    try:
        receipt = services.request_deletion(current_user, scope, int(target) if target else None)
    except DeletionError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Deleting: {receipt.what}. The receipt below shows when it is done.", "info")
    return redirect(url_for("privacy.my_data"))


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per hour", methods=["POST"])
def delete_account() -> Response | tuple[str, int]:
    """Delete the account, confirmed by the password or a fresh Google sign-in."""
    error = None
    if request.method == "POST":
        try:
            services.request_account_deletion(current_user, request.form.get("password", ""))
        except DeletionError as exc:
            error = str(exc)
        else:
            logout_user()
            flash(
                "Your account is being deleted and every session is signed out. "
                "We will e-mail you a receipt when it is done.",
                "info",
            )
            return redirect(url_for("pages.index"))
    html = render_template(
        "privacy/delete_account.html",
        error=error,
        google_enabled=google_enabled(),
        reauthenticated=recently_reauthenticated(),
    )
    return html, 422 if error else 200
