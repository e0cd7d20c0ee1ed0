"""Sign up, sign in (password or Google), sign out, e-mail verification, password reset."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user, user_logged_in
from werkzeug.wrappers import Response

from app.accounts import credentials, emails, google, services
from app.accounts.forms import (
    ForgotPasswordForm,
    GoogleSignUpForm,
    ResetPasswordForm,
    SignInForm,
    SignUpForm,
)
from app.accounts.mail import outbox_folder
from app.accounts.tokens import TokenError, read_token
from app.errors import error_response, wants_json
from app.extensions import get_settings, limiter, login_manager
from app.getting_started import welcome_message

bp = Blueprint("accounts", __name__)
bp.record_once(lambda state: google.init_google(state.app))


DEVICE_KEY = "device"  # the session's own id, for signing out one device


@login_manager.user_loader
def load_user(session_id: str) -> services.User | None:
    """Flask-Login's loader: refuses sessions that were revoked."""
    return services.load_session_user(session_id, session.get(DEVICE_KEY))


@user_logged_in.connect
def _new_device_session(sender: object, user: services.User, **extra: object) -> None:
    """Each sign-in is a new device session with an id of its own."""
    session[DEVICE_KEY] = services.new_device_id()


@login_manager.unauthorized_handler
def not_signed_in() -> ResponseReturnValue:
    """Scripts calling the JSON API get a 401 they can act on; people get the sign-in page."""
    if wants_json():
        return error_response(401, "Sign in first: this needs a signed-in session.")
    flash(login_manager.login_message, "info")
    return redirect(url_for("accounts.sign_in", next=request.full_path.rstrip("?")))


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
            emails.queue_verification(user)
            flash(welcome_message(), "success")
            flash(confirmation_sent(user.email), "info")
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
    return render_template(
        "accounts/sign_in.html", form=form, google_enabled=google.is_enabled()
    ), (200 if not form.errors else 422)


@bp.route("/sign-out", methods=["POST"])
@login_required
def sign_out() -> Response:
    """End this device's session (its cookie is refused from now on, even a copy of it)."""
    device = session.get(DEVICE_KEY)
    services.sign_out_device(current_user, device, current_app.permanent_session_lifetime)
    logout_user()
    session.pop(DEVICE_KEY, None)
    where = "this device" if device else "every device"  # an old session has no device id
    flash(f"You are signed out on {where}.", "info")
    return redirect(url_for("accounts.sign_in"))


@bp.route("/sign-out/everywhere", methods=["POST"])
@login_required
def sign_out_everywhere() -> Response:
    """End this session and revoke every other one on the server side."""
    services.revoke_sessions(current_user)
    logout_user()
    session.pop(DEVICE_KEY, None)
    flash("You are signed out on every device.", "info")
    return redirect(url_for("accounts.sign_in"))


def confirmation_sent(email: str) -> str:
    """Where the address's confirmation went: the inbox, or the outbox folder (embedded)."""
    outbox = outbox_folder()
    sent = f"We sent a confirmation e-mail to {email}: follow its link to confirm the address."
    if outbox is None:
        return sent
    return f"{sent} This server has no mail server configured, so it was written to {outbox}."


@bp.route("/sign-in/google", methods=["POST"])
@limiter.limit("30 per minute")
def google_start() -> Response:
    """Send the browser to Google to sign in, link the account, or confirm a deletion."""
    intent = request.form.get("intent", "sign-in")
    if intent == "sign-in" and current_user.is_authenticated:
        return redirect(url_for("pages.dashboard"))
    if intent != "sign-in" and not current_user.is_authenticated:
        return redirect(url_for("accounts.sign_in"))
    try:
        return google.start(intent)
    except google.GoogleError as exc:
        flash(str(exc), "error")
        return redirect(url_for("accounts.sign_in"))


@bp.route("/sign-in/google/callback")
@limiter.limit("30 per minute")
def google_callback() -> Response:
    """Google sends the browser back here; the state, nonce and ID token are checked."""
    try:
        intent, profile = google.finish()
        if intent != "sign-in":
            return _google_for_signed_in(intent, profile)
    except (google.GoogleError, services.AccountError) as exc:
        flash(exc.message if isinstance(exc, services.AccountError) else str(exc), "error")
        signed_in = current_user.is_authenticated
        return redirect(url_for("account.show" if signed_in else "accounts.sign_in"))
    user = google.user_for(profile)
    if user is not None and user.deletion_requested_at is None:
        login_user(user)
        return redirect(url_for("pages.dashboard"))
    if user is not None or google.email_in_use(profile):
        # Never take over an account by e-mail: linking happens from inside the account.
        flash(
            "An Attune account already uses this e-mail address. Sign in with your password, "
            "then link Google from your account page.",
            "error",
        )
        return redirect(url_for("accounts.sign_in"))
    google.remember_pending(profile)
    return redirect(url_for("accounts.google_sign_up"))


def _google_for_signed_in(intent: str, profile: google.GoogleProfile) -> Response:
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.sign_in"))
    if intent == "link":
        google.link(current_user, profile)
        flash(f"Google account {profile.email} is linked. You can sign in with it now.", "success")
        return redirect(url_for("account.show"))
    google.remember_reauth(current_user, profile)
    return redirect(url_for("privacy.delete_account"))


@bp.route("/sign-up/google", methods=["GET", "POST"])
def google_sign_up() -> Response | tuple[str, int]:
    """A new Google person confirms they are 18+ before the account is created."""
    profile = google.pending_profile()
    if profile is None:
        flash("Your Google sign-in expired. Please try again.", "error")
        return redirect(url_for("accounts.sign_in"))
    form = GoogleSignUpForm(data={"name": profile.name} if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            user = google.create_user(
                profile, form.name.data or "", form.company.data, bool(form.adult.data)
            )
        except services.AccountError as exc:
            getattr(form, exc.field, form.name).errors.append(exc.message)
        else:
            login_user(user)
            flash(welcome_message(), "success")
            return redirect(url_for("pages.dashboard"))
    status = 200 if not form.errors else 422
    return render_template("accounts/google_sign_up.html", form=form, profile=profile), status


@bp.route("/verify-email/<token>")
def verify_email(token: str) -> Response:
    """Follow the link from the verification e-mail."""
    try:
        credentials.verify_email(token)
    except TokenError as exc:
        flash(str(exc), "error")
    else:
        flash("Thank you: your e-mail address is confirmed.", "success")
    target = "account.show" if current_user.is_authenticated else "accounts.sign_in"
    return redirect(url_for(target))


def _reset_email_key() -> str:
    return "reset:" + services.normalize_email(request.form.get("email", ""))[:254]


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
@limiter.limit("5 per hour", key_func=_reset_email_key, methods=["POST"])
def forgot_password() -> tuple[str, int]:
    """Ask for a reset link; the answer is the same whether or not the account exists."""
    form = ForgotPasswordForm()
    sent = False
    if form.validate_on_submit():
        credentials.request_password_reset(form.email.data or "")
        sent = True
    status = 422 if form.errors else 200
    return render_template("accounts/forgot_password.html", form=form, sent=sent), status


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def reset_password(token: str) -> Response | tuple[str, int, dict[str, str]]:
    """Choose a new password from the e-mailed link; signs out every other session."""
    form = ResetPasswordForm()
    error = None
    if request.method == "GET":
        try:
            read_token(token, "reset")
        except TokenError as exc:
            error = str(exc)
    if form.validate_on_submit():
        try:
            user = credentials.reset_password(token, form.password.data or "")
        except TokenError as exc:
            error = str(exc)
        except services.AccountError as exc:
            form.password.errors.append(exc.message)
        else:
            login_user(user)
            flash("Your new password is set. Every other session was signed out.", "success")
            return redirect(url_for("pages.dashboard"))
    status = 422 if (form.errors or error) else 200
    headers = {"Referrer-Policy": "no-referrer"}  # the token is in this page's URL
    html = render_template("accounts/reset_password.html", form=form, error=error)
    return html, status, headers


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in."""
    if target:
        parts = urlsplit(target)
        # "//host" and "///host" name another site in browsers, though Python sees no netloc.
        local = target.startswith("/") and not target.startswith("//") and "\\" not in target
        if not parts.scheme and not parts.netloc and local:
            return target
    return url_for("pages.dashboard")
