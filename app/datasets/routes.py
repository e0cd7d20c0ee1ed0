"""Dataset pages: list and create, view, settings, deletion, caption tools, thumbnails."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.datasets import captions, services
from app.datasets.forms import DatasetForm, DatasetSettingsForm, ReplaceForm
from app.datasets.limits import ACCEPTED_FILES, SINGLE_PUT_LIMIT, megabytes
from app.datasets.models import Dataset
from app.datasets.previews import resolution_hint
from app.extensions import get_settings, get_storage
from catalogue.families import FAMILIES
from catalogue.prompts import TRIGGER_RULE

bp = Blueprint("datasets", __name__)


@bp.route("/datasets", methods=["GET", "POST"])
@login_required
def index() -> Response | str:
    """List datasets (items, size, status) and create a new one."""
    form = DatasetForm()
    if form.validate_on_submit():
        dataset = services.create_dataset(
            current_user, form.name.data or "", form.trigger_word.data
        )
        return redirect(url_for("datasets.show", dataset_id=dataset.id))
    return render_template(
        "datasets/index.html",
        summaries=services.summarize_datasets(current_user),
        form=form,
        used=services.storage_used(current_user),
        allowance=services.storage_allowance(current_user),
        megabytes=megabytes,
    )


@bp.route("/datasets/<int:dataset_id>")
@login_required
def show(dataset_id: int) -> str:
    """One dataset: its items, the uploader, caption tools and the bucket preview."""
    dataset = services.get_dataset(current_user, dataset_id)
    return _render_show(dataset, DatasetSettingsForm(obj=dataset), ReplaceForm())


def _render_show(
    dataset: Dataset, settings_form: DatasetSettingsForm, replace_form: ReplaceForm
) -> str:
    return render_template(
        "datasets/show.html",
        dataset=dataset,
        counts=services.item_counts(dataset),
        page=services.items_page(dataset, _page_number()),
        settings_form=settings_form,
        replace_form=replace_form,
        # Only what this server trains: a preview for another base model would promise a run
        # nobody here can start.
        families=[FAMILIES[name] for name in get_settings().enabled_families if name in FAMILIES],
        resolution_hint=resolution_hint,
        auto_caption=captions.auto_caption_available(),
        trigger_rule=TRIGGER_RULE,
        accept=",".join(sorted(ACCEPTED_FILES)) + ",.txt",
        single_put_limit=SINGLE_PUT_LIMIT,
        megabytes=megabytes,
    )


@bp.route("/datasets/<int:dataset_id>/items-grid")
@login_required
def items_grid(dataset_id: int) -> str:
    """The item grid alone, for the page to refresh while ingest works."""
    dataset = services.get_dataset(current_user, dataset_id)
    return render_template(
        "datasets/_items.html",
        dataset=dataset,
        counts=services.item_counts(dataset),
        page=services.items_page(dataset, _page_number()),
        megabytes=megabytes,
    )


def _page_number() -> int:
    """The grid page asked for (?page=N), 1 when absent or not a number."""
    return request.args.get("page", 1, type=int) or 1


@bp.route("/datasets/<int:dataset_id>/items/remove-rejected", methods=["POST"])
@login_required
def remove_rejected(dataset_id: int) -> Response:
    """Delete every item ingest refused, to leave only what can train."""
    dataset = services.get_dataset(current_user, dataset_id)
    removed = services.delete_rejected_items(dataset)
    flash(f"Removed {removed} rejected item{'s' if removed != 1 else ''}.", "info")
    return redirect(url_for("datasets.show", dataset_id=dataset.id) + "#items")


@bp.route("/datasets/<int:dataset_id>/settings", methods=["POST"])
@login_required
def update(dataset_id: int) -> Response | tuple[str, int]:
    """Rename the dataset, set its trigger word and caption template."""
    dataset = services.get_dataset(current_user, dataset_id)
    form = DatasetSettingsForm()
    if not form.validate_on_submit():
        return _render_show(dataset, form, ReplaceForm()), 422
    services.update_dataset(
        dataset, form.name.data or "", form.trigger_word.data, form.caption_template.data
    )
    flash("Saved the dataset's settings.", "success")
    return redirect(url_for("datasets.show", dataset_id=dataset.id))


@bp.route("/datasets/<int:dataset_id>/delete", methods=["POST"])
@login_required
def delete(dataset_id: int) -> Response:
    """Delete a dataset with all its files."""
    dataset = services.get_dataset(current_user, dataset_id)
    services.delete_dataset(dataset)
    flash(f"Deleted “{dataset.name}” and its files.", "info")
    return redirect(url_for("datasets.index"))


@bp.route("/datasets/<int:dataset_id>/items/<int:item_id>/delete", methods=["POST"])
@login_required
def delete_item(dataset_id: int, item_id: int) -> Response:
    """Delete one item and its files."""
    item = services.get_item(current_user, dataset_id, item_id)
    name = item.filename
    services.delete_item(item)
    flash(f"Deleted “{name}”.", "info")
    return redirect(url_for("datasets.show", dataset_id=dataset_id))


@bp.route("/datasets/<int:dataset_id>/items/<int:item_id>/thumbnail")
@login_required
def thumbnail(dataset_id: int, item_id: int) -> Response:
    """A short-lived link to the item's thumbnail."""
    item = services.get_item(current_user, dataset_id, item_id)
    if not item.thumbnail_key:
        abort(404)
    expiry = get_settings().download_url_expiry_s
    url = get_storage().presign_download(item.thumbnail_key, expiry, f"{item.id}.webp")
    return redirect(url)


@bp.route("/datasets/<int:dataset_id>/captions/prepend-trigger", methods=["POST"])
@login_required
def prepend_trigger(dataset_id: int) -> Response:
    """Put the trigger word in front of every caption."""
    dataset = services.get_dataset(current_user, dataset_id)
    return _caption_action(dataset, lambda: captions.prepend_trigger(dataset), "Added")


@bp.route("/datasets/<int:dataset_id>/captions/replace", methods=["POST"])
@login_required
def replace_captions(dataset_id: int) -> Response | tuple[str, int]:
    """Find and replace text in every caption."""
    dataset = services.get_dataset(current_user, dataset_id)
    form = ReplaceForm()
    if not form.validate_on_submit():
        return _render_show(dataset, DatasetSettingsForm(obj=dataset), form), 422
    find, replace = form.find.data or "", form.replace.data or ""
    return _caption_action(
        dataset, lambda: captions.find_and_replace(dataset, find, replace), "Changed"
    )


def _caption_action(dataset: Dataset, action: Callable[[], int], verb: str) -> Response:
    try:
        changed = action()
    except services.DatasetError as exc:
        flash(str(exc), "error")
    else:
        flash(f"{verb} {changed} caption{'s' if changed != 1 else ''}.", "success")
    return redirect(url_for("datasets.show", dataset_id=dataset.id) + "#captions")


@bp.route("/datasets/<int:dataset_id>/captions/auto", methods=["POST"])
@login_required
def auto_caption(dataset_id: int) -> Response:
    """Queue automatic captions, or explain plainly why there are none."""
    dataset = services.get_dataset(current_user, dataset_id)
    try:
        captions.request_auto_captions(dataset)
    except services.DatasetError as exc:
        flash(str(exc), "error")
    else:
        flash("Captioning has started; captions appear here as they are written.", "success")
    return redirect(url_for("datasets.show", dataset_id=dataset.id) + "#captions")
