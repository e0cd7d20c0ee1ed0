"""The webhooks page (account menu): endpoints, secrets shown once, test events, the log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.extensions import get_settings, limiter
from app.webhooks import services
from app.webhooks.events import send_test_event
from app.webhooks.forms import EVENT_LABELS, EndpointForm
from app.webhooks.models import WebhookEndpoint

bp = Blueprint("webhooks", __name__, url_prefix="/account/webhooks")


@bp.context_processor
def delivery_terms() -> dict[str, Any]:
    """What the pages promise about deliveries, from the settings."""
    settings = get_settings()
    return {
        "timeout_s": settings.webhook_timeout_s,
        "retry_waits": [_duration(wait) for wait in settings.webhook_retry_schedule_s],
        "retention_days": settings.webhook_log_retention_days,
    }


def _duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _per_account() -> str:
    """Rate-limit key: the signed-in person, wherever they connect from."""
    return f"account:{current_user.get_id()}"


def _secret_page(html: str, status: int = 200) -> Response:
    """A page that shows a secret: never cached, by the browser or anything in between."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _index(form: EndpointForm | None = None, revealed: dict[str, str] | None = None) -> str:
    holder = services.run_secret(current_user.id)
    return render_template(
        "webhooks/index.html",
        endpoints=services.list_endpoints(current_user),
        form=form or EndpointForm(formdata=None),
        labels=EVENT_LABELS,
        run_secret=holder,
        run_log=services.delivery_log(current_user, None),
        revealed=revealed,
    )


@bp.route("")
@login_required
def index() -> str:
    """Endpoints, the per-run webhook secret and the log of per-run webhook deliveries."""
    return _index()


@bp.route("", methods=["POST"])
@login_required
def create() -> Response:
    """Add an endpoint; the answer shows its signing secret, this once."""
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            endpoint, secret = services.create_endpoint(
                current_user, form.url.data, form.description.data or "", form.event_types.data
            )
        except services.WebhookError as exc:
            getattr(form, exc.field).errors = [*getattr(form, exc.field).errors, exc.message]
        else:
            revealed = {"label": endpoint.url, "secret": secret}
            return _secret_page(_index(revealed=revealed), 201)
    return _secret_page(_index(form), 422)


@bp.route("/<int:endpoint_id>")
@login_required
def show(endpoint_id: int) -> str:
    """One endpoint: its state, actions and delivery log."""
    endpoint = services.get_endpoint(current_user, endpoint_id)
    return _show(endpoint)


def _show(endpoint: WebhookEndpoint, revealed: dict[str, str] | None = None) -> str:
    return render_template(
        "webhooks/show.html",
        endpoint=endpoint,
        labels=EVENT_LABELS,
        log=services.delivery_log(current_user, endpoint),
        revealed=revealed,
    )


@bp.route("/<int:endpoint_id>/rotate", methods=["POST"])
@login_required
def rotate(endpoint_id: int) -> Response:
    """A new signing secret, shown once; the old one keeps signing for a day."""
    endpoint = services.get_endpoint(current_user, endpoint_id)
    secret = services.rotate_secret(endpoint)
    return _secret_page(_show(endpoint, {"label": endpoint.url, "secret": secret}))


@bp.route("/<int:endpoint_id>/disable", methods=["POST"], defaults={"on": False})
@bp.route("/<int:endpoint_id>/enable", methods=["POST"], defaults={"on": True})
@login_required
def switch(endpoint_id: int, on: bool) -> Response:
    """Turn the endpoint off (pending retries stop too) or on again (events from now on)."""
    services.set_endpoint_disabled(services.get_endpoint(current_user, endpoint_id), not on)
    if on:
        flash("The endpoint is on again.", "success")
    else:
        flash("The endpoint is off: it gets no deliveries until you turn it on again.", "info")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.route("/<int:endpoint_id>/delete", methods=["POST"])
@login_required
def delete(endpoint_id: int) -> Response:
    """Remove the endpoint and its delivery log."""
    services.delete_endpoint(services.get_endpoint(current_user, endpoint_id))
    flash("The endpoint and its delivery log are deleted.", "success")
    return redirect(url_for("webhooks.index"))


@bp.route("/<int:endpoint_id>/test", methods=["POST"])
@login_required
@limiter.limit("30 per hour", key_func=_per_account)
def send_test(endpoint_id: int) -> Response:
    """Queue a "test" event to the endpoint; it appears in the log below within seconds."""
    endpoint = services.get_endpoint(current_user, endpoint_id)
    try:
        send_test_event(endpoint)
    except services.WebhookError as exc:
        flash(exc.message, "error")
    else:
        flash("A test event is on its way. Reload to see it in the log.", "info")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.route("/run-secret/rotate", methods=["POST"])
@login_required
def rotate_run_secret() -> Response:
    """Create (or replace) the secret that signs runs' own webhooks; shown once."""
    secret = services.new_run_secret(current_user.id)
    return _secret_page(_index(revealed={"label": "per-run webhooks", "secret": secret}))
