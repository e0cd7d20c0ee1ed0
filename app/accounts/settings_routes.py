"""The account page: profile, e-mail and password changes, the Google link."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from app.accounts import credentials, emails, google, services
from app.accounts.forms import ChangeEmailForm, ChangePasswordForm, ProfileForm
from app.accounts.tokens import TokenError
from app.extensions import limiter

bp = Blueprint("account", __name__, url_prefix="/account")


def _page(status: int = 200, **forms: FlaskForm) -> tuple[str, int]:
    user = current_user
    context = {
        "profile_form": ProfileForm(obj=user, formdata=None),
        "email_form": ChangeEmailForm(formdata=None),
        "password_form": ChangePasswordForm(formdata=None),
        **forms,
    }
    html = render_template(
        "accounts/account.html",
        identity=google.google_identity(user),
        google_enabled=google.is_enabled(),
        **context,
    )
    return html, status


@bp.route("")
@login_required
def show() -> tuple[str, int]:
    """Everything the person can change about their account."""
    return _page()


@bp.route("/profile", methods=["POST"])
@login_required
def profile() -> Response | tuple[str, int]:
    """Correct name and company."""
    form = ProfileForm()
    if form.validate_on_submit():
        try:
            services.update_profile(current_user, form.name.data or "", form.company.data)
        except services.AccountError as exc:
            form.name.errors.append(exc.message)
        else:
            flash("Your profile is saved.", "success")
            return redirect(url_for("account.show"))
    return _page(422, profile_form=form)


@bp.route("/email", methods=["POST"])
@login_required
@limiter.limit("10 per hour")
def change_email() -> Response | tuple[str, int]:
    """Start an e-mail change: the new address gets a confirmation link."""
    form = ChangeEmailForm()
    if form.validate_on_submit():
        try:
            credentials.request_email_change(
                current_user, form.email.data or "", form.password.data or ""
            )
        except services.AccountError as exc:
            getattr(form, exc.field, form.email).errors.append(exc.message)
        else:
            flash(f"We sent a confirmation link to {current_user.pending_email}.", "info")
            return redirect(url_for("account.show"))
    return _page(422, email_form=form)


@bp.route("/email/confirm/<token>")
def confirm_email(token: str) -> Response:
    """Follow the link sent to the new address."""
    try:
        user = credentials.confirm_email_change(token)
    except TokenError as exc:
        flash(str(exc), "error")
    except services.AccountError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Your e-mail address is now {user.email}.", "success")
    target = "account.show" if current_user.is_authenticated else "accounts.sign_in"
    return redirect(url_for(target))


@bp.route("/password", methods=["POST"])
@login_required
@limiter.limit("10 per hour")
def change_password() -> Response | tuple[str, int]:
    """Set a new password; every other session is signed out."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            credentials.change_password(
                current_user, form.current_password.data or "", form.password.data or ""
            )
        except services.AccountError as exc:
            getattr(form, exc.field, form.password).errors.append(exc.message)
        else:
            # This session carries the new session version; every other one is now refused.
            login_user(current_user._get_current_object())
            flash("Your password is changed. Every other session was signed out.", "success")
            return redirect(url_for("account.show"))
    return _page(422, password_form=form)


@bp.route("/verify-email", methods=["POST"])
@login_required
@limiter.limit("5 per hour")
def resend_verification() -> Response:
    """Send the verification link again."""
    if current_user.email_verified_at is None:
        emails.queue_verification(current_user)
        flash(f"We sent a new confirmation link to {current_user.email}.", "info")
    return redirect(url_for("account.show"))


@bp.route("/google/unlink", methods=["POST"])
@login_required
def unlink_google() -> Response:
    """Stop signing in with Google (only when a password is set)."""
    try:
        google.unlink(current_user)
    except services.AccountError as exc:
        flash(exc.message, "error")
    else:
        flash("Google sign-in is unlinked.", "info")
    return redirect(url_for("account.show"))
