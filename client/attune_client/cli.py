"""The `attune` command: login, datasets upload, train (--wait), wait, cancel, download, usage,
models. Exit status: 0 done, 1 refused or failed (the message says why), 2 wrong usage or not
signed in, 130 interrupted."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from attune_client import config
from attune_client.client import Client
from attune_client.errors import AttuneError, NotFound, Unauthorized
from attune_client.progress import StatusLine, size_text, training_text, upload_text
from attune_client.uploads import UploadResult

F = TypeVar("F", bound=Callable[..., Any])


class Commands(click.Group):
    """A group whose commands report the client's errors as messages, never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Unauthorized as exc:
            raise click.ClickException(f"{exc}\nSign in again with `attune login`.") from exc
        except AttuneError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)


@click.group(cls=Commands)
@click.version_option("0.1.0", prog_name="attune")
def main() -> None:
    """Train LoRAs on Attune from the command line (through /api/v1)."""


def client_from(ctx: click.Context, url: str | None = None, key: str | None = None) -> Client:
    """A Client for the saved (or given) server and key; ctx.obj may hold more Client options
    (the tests' transport)."""
    settings = config.load_settings()
    key = key or settings.key
    if not key:
        raise click.UsageError("Not signed in: run `attune login` first.")
    return Client(url or settings.url, key, **(ctx.obj or {}))


@main.command()
@click.option("--url", help=f"The Attune server (default: the saved one, or {config.DEFAULT_URL}).")
@click.option("--key", help="An API key from your account's API keys page (asked if not given).")
@click.pass_context
def login(ctx: click.Context, url: str | None, key: str | None) -> None:
    """Check an API key with the server and save it for the next commands."""
    url = (url or config.load_settings().url).rstrip("/")
    key = (key or click.prompt("API key", hide_input=True)).strip()
    with client_from(ctx, url, key) as client:
        usage = client.usage()
    path = config.save_settings(url, key)
    plan = usage.get("plan") or {}
    left = usage["gpu_seconds"]["left"] / 3600
    click.echo(f"Signed in to {url} ({plan.get('label', 'no')} plan, {left:.1f} GPU-hours left).")
    click.echo(f"The key is saved in {path}, readable only by you.")


@main.command()
def logout() -> None:
    """Forget the saved key (revoke it on the API keys page to stop it working)."""
    forgotten = config.forget_settings()
    click.echo("The saved key is forgotten." if forgotten else "No key was saved.")


@main.group(cls=Commands)
def datasets() -> None:
    """Datasets: upload a folder, list them and their files."""


@datasets.command("upload")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", "dataset_id", type=int, help="Add to this dataset.")
@click.option("--new", is_flag=True, help="Make a new dataset even if this folder went up before.")
@click.option("--name", help="The new dataset's name (default: the folder's).")
@click.option("--trigger-word", help="The new dataset's trigger word.")
@click.option("--workers", default=4, show_default=True, help="Files and parts sent at once.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the service to check the files.")  # fmt: skip
@click.pass_context
def upload(ctx: click.Context, folder: Path, dataset_id: int | None, new: bool, name: str | None,
           trigger_word: str | None, workers: int, wait: bool) -> None:  # fmt: skip
    """Upload a folder's images, clips and zips (captions from same-name .txt files).

    Run it again after an interruption: files already in are skipped and a large file resumes
    from the parts storage holds."""
    with client_from(ctx) as client:
        url = client.http.base_url
        if dataset_id is None and not new:
            dataset_id = _remembered(client, folder)
        if dataset_id is not None:
            click.echo(f"Adding to dataset {dataset_id} (--new makes a new one).", err=True)
        line = StatusLine()
        try:
            result = client.datasets.upload_dir(
                folder, dataset_id, name=name, trigger_word=trigger_word, workers=workers,
                on_progress=lambda progress: line.show(upload_text(progress),
                                                       progress.files_done == progress.files_total),
            )  # fmt: skip
        finally:
            line.close()
        config.remember_dataset(url, folder, result.dataset["id"])
        problems = _upload_summary(result, folder)
        if wait:  # also on a re-run: the files rejected the first time are still named
            if result.uploaded:
                click.echo("Waiting for the files to be checked…", err=True)
            items = client.datasets.wait_ingested(result.dataset["id"])
            problems += _ingest_summary(items, set(result.uploaded) | set(result.already_there))
    if problems:
        raise click.ClickException(f"{problems} file(s) did not make it into the dataset.")


def _remembered(client: Client, folder: Path) -> int | None:
    """The dataset an earlier upload of this folder went into, while it still exists."""
    dataset_id = config.remembered_dataset(client.http.base_url, folder)
    if dataset_id is None:
        return None
    try:
        client.datasets.get(dataset_id)
    except NotFound:
        return None
    return dataset_id


def _upload_summary(result: UploadResult, folder: Path) -> int:
    dataset = result.dataset
    click.echo(f"Dataset {dataset['id']} “{dataset['name']}”: {len(result.uploaded)} sent, "
               f"{len(result.already_there)} already there.")  # fmt: skip
    for name, reason in {**result.refused, **result.failed}.items():
        click.echo(f"  {name}: {reason}", err=True)
    for name in result.unmatched_captions:
        click.echo(f"  {name}: a caption with no image or clip of the same name; skipped", err=True)
    if result.failed:
        click.echo(f"Run `attune datasets upload {folder}` again to resume.", err=True)
    return len(result.refused) + len(result.failed)


def _ingest_summary(items: list[dict[str, Any]], names: set[str]) -> int:
    mine = [item for item in items if item["filename"] in names]
    rejected = [item for item in mine if item["status"] == "rejected"]
    ready = sum(item["status"] == "ready" for item in mine)
    click.echo(f"{ready} ready, {len(rejected)} rejected.")
    for item in rejected:
        click.echo(f"  {item['filename']}: {item['reject_reason']}", err=True)
    return len(rejected)


@datasets.command("list")
@click.pass_context
def list_datasets(ctx: click.Context) -> None:
    """Your datasets, newest first."""
    with client_from(ctx) as client:
        for dataset in client.datasets.list():
            counts = dataset["items"]
            click.echo(f"{dataset['id']:>6}  {dataset['name']}  ({counts['ready']} ready, "
                       f"{counts['rejected']} rejected, {counts['pending']} pending, "
                       f"{size_text(dataset['size_bytes'])})")  # fmt: skip


@main.command()
@click.option("--dataset", "dataset_id", type=int, required=True, help="The dataset to train on.")
@click.option("--family", required=True, help="The base model (see `attune models`).")
@click.option("--preset", help="character, style, product, motion (default: the family's).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A training parameter, e.g. --param steps=1500 (repeatable).")  # fmt: skip
@click.option("--name", help="A name for the run.")
@click.option("--idempotency-key", help="Send the same key to make a retried command safe.")
@click.option("--wait", is_flag=True, help="Follow the run until it finishes.")
@click.pass_context
def train(ctx: click.Context, dataset_id: int, family: str, preset: str | None,
          params: tuple[str, ...], name: str | None, idempotency_key: str | None,
          wait: bool) -> None:  # fmt: skip
    """Start a training run."""
    with client_from(ctx) as client:
        run = client.trainings.create(dataset_id, family, preset, _parameters(params) or None,
                                      name=name, idempotency_key=idempotency_key)  # fmt: skip
        click.echo(f"Run {run['id']} started ({run['status']}, "
                   f"{run['gpu_seconds']['reserved']} GPU-seconds reserved).")  # fmt: skip
        if wait:
            _follow(client, run["id"])


def _parameters(given: tuple[str, ...]) -> dict[str, Any]:
    """NAME=VALUE pairs; values read as JSON where they are (numbers, lists), else as text."""
    parameters: dict[str, Any] = {}
    for pair in given:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"“{pair}” is not NAME=VALUE.", param_hint="--param")
        try:
            parameters[name.strip()] = json.loads(value)
        except ValueError:
            parameters[name.strip()] = value
    return parameters


def _follow(client: Client, run_id: int) -> None:
    """Show the run's progress until it finishes; fail unless it succeeded."""
    line = StatusLine()
    try:
        run = client.trainings.wait(
            run_id,
            lambda run: line.show(training_text(run), run["status"] != "running"),
            interval=1.0,
        )
    except KeyboardInterrupt:
        line.close()
        click.echo(f"\nStopped watching; run {run_id} goes on. `attune wait {run_id}` follows "
                   f"it again, `attune cancel {run_id}` stops it.", err=True)  # fmt: skip
        sys.exit(130)
    line.close()
    if run["status"] != "succeeded":
        reason = f": {run['error']}" if run.get("error") else "."
        raise click.ClickException(f"Run {run_id} {run['status']}{reason}")
    click.echo(f"Run {run_id} succeeded ({run['gpu_seconds']['used']} GPU-seconds). "
               f"Download it with `attune download {run_id}`.")  # fmt: skip


@main.command("wait")
@click.argument("run_id", metavar="RUN", type=int)
@click.pass_context
def wait_for_run(ctx: click.Context, run_id: int) -> None:
    """Follow a run until it finishes."""
    with client_from(ctx) as client:
        _follow(client, run_id)


@main.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.pass_context
def cancel(ctx: click.Context, run_id: int) -> None:
    """Stop a run (GPU time used so far is charged)."""
    with client_from(ctx) as client:
        run = client.trainings.cancel(run_id)
    click.echo(
        f"Run {run_id}: {run['status']}"
        + (", stopping at its next step." if run["status"] == "running" else ".")
    )


@main.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--kind", "kinds", multiple=True, default=("lora",), show_default=True,
              help="lora, comfyui, checkpoint, sample, ... or all (repeatable).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=".",
              help="The folder to save into.")  # fmt: skip
@click.pass_context
def download(ctx: click.Context, run_id: int, kinds: tuple[str, ...], output: Path) -> None:
    """Download a run's LoRA (or other files)."""
    with client_from(ctx) as client:
        for path in client.trainings.download(run_id, kinds, output):
            click.echo(str(path))


@main.command()
@click.pass_context
def usage(ctx: click.Context) -> None:
    """This period's GPU time and storage."""
    with client_from(ctx) as client:
        info = client.usage()
    gpu, storage = info["gpu_seconds"], info["storage"]
    click.echo(f"GPU-hours: {gpu['used'] / 3600:.2f} used, {gpu['reserved'] / 3600:.2f} reserved, "
               f"{gpu['left'] / 3600:.2f} left of {gpu['allowance'] / 3600:.2f} "
               f"(until {info['period']['end']}).")  # fmt: skip
    click.echo(f"Storage: {size_text(storage['used_bytes'])} of "
               f"{size_text(storage['allowance_bytes'])}.")  # fmt: skip


@main.command()
@click.pass_context
def models(ctx: click.Context) -> None:
    """The base models you can train, with their presets."""
    with client_from(ctx) as client:
        families = client.models()["data"]
    for family in families:
        presets = ", ".join(preset["name"] for preset in family["presets"])
        note = "" if family["available"] else "  (not in your plan)"
        click.echo(f"{family['name']:<22} {family['label']}: {presets}{note}")
