"""Sign up, sign in, sign out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.accounts import services
from app.accounts.forms import SignInForm, SignUpForm
from app.extensions import get_settings, limiter, login_manager

bp = Blueprint("accounts", __name__)


@login_manager.user_loader
def load_user(session_id: str) -> services.User | None:
    """Flask-Login's loader: refuses sessions that were revoked."""
    return services.load_session_user(session_id)


def _sign_in_account_key() -> str:
    """Rate-limit key for sign-in attempts against one account."""
    return "sign-in:" + services.normalize_email(request.form.get("email", ""))[:254]


def _sign_in_limit() -> str:
    return f"{get_settings().login_attempts_per_minute} per minute"


def _sign_in_failed(response: Response) -> bool:
    return bool(g.get("sign_in_failed"))


@bp.route("/sign-up", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def sign_up() -> Response | str:
    """Create an account and sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("pages.dashboard"))
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            user = services.register_user(
                form.name.data or "",
                form.email.data or "",
                form.password.data or "",
                form.company.data,
                bool(form.adult.data),
            )
        except services.AccountError as exc:
            getattr(form, exc.field).errors.append(exc.message)
        else:
            login_user(user)
            flash("Welcome to Attune. Create a dataset to get started.", "success")
            return redirect(url_for("pages.dashboard"))
    return render_template("accounts/sign_up.html", form=form), 200 if not form.errors else 422


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit("60 per minute", methods=["POST"])
@limiter.limit(
    _sign_in_limit, key_func=_sign_in_account_key, methods=["POST"], deduct_when=_sign_in_failed
)
def sign_in() -> Response | str:
    """Check e-mail and password and start a session."""
    if current_user.is_authenticated:
        return redirect(url_for("pages.dashboard"))
    form = SignInForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        g.sign_in_failed = True
        form.password.errors.append("That e-mail and password do not match an account.")
    return render_template("accounts/sign_in.html", form=form), 200 if not form.errors else 422


@bp.route("/sign-out", methods=["POST"])
@login_required
def sign_out() -> Response:
    """End this session."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("accounts.sign_in"))


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("pages.dashboard")
