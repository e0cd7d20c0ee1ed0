"""The API keys page under the account menu: create (the key is shown once), list, revoke."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.apikeys import services
from app.apikeys.forms import NewKeyForm

bp = Blueprint("apikeys", __name__, url_prefix="/account/api-keys")


def _page(form: NewKeyForm, status: int = 200, new_key: str | None = None) -> Response:
    html = render_template(
        "apikeys/index.html",
        form=form,
        keys=services.list_keys(current_user),
        access_labels=services.ACCESS_CHOICES,
        new_key=new_key,
    )
    response = make_response(html, status)
    # The page that shows a new key must not linger in a cache or the back-forward history.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("")
@login_required
def index() -> Response:
    """The person's keys and the form for a new one."""
    return _page(NewKeyForm(formdata=None))


@bp.route("", methods=["POST"])
@login_required
def create() -> Response:
    """Create a key and show it this once; only its hash is kept."""
    form = NewKeyForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    try:
        _, key = services.create_key(current_user, form.name.data or "", form.access.data or "")
    except services.ApiKeyError as exc:
        form.name.errors = [*form.name.errors, str(exc)]
        return _page(form, 422)
    return _page(NewKeyForm(formdata=None), 201, new_key=key)


@bp.route("/<int:key_id>/revoke", methods=["POST"])
@login_required
def revoke(key_id: int) -> Response:
    """Delete a key: it stops working at once."""
    name, prefix = services.revoke_key(current_user, key_id)
    flash(f"Revoked and deleted “{name}” ({prefix}…). Scripts using it now get 401.", "info")
    return redirect(url_for("apikeys.index"))
