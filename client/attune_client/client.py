"""The library: Client(base_url, key) with datasets, trainings, usage and models, each call one
/api/v1 operation (or a few, for uploading a folder, waiting and downloading)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from attune_client.errors import AttuneError, TimedOut
from attune_client.http import Http, Json
from attune_client.uploads import FolderUpload, UploadProgress, UploadResult

FINISHED = ("succeeded", "failed", "cancelled")
INGESTING = "uploaded"  # an item whose bytes are in and whose ingest has not decided yet


class Client:
    """An Attune account, reached with an API key (`att_live_…`) at `base_url`."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = Http(base_url, key, timeout=timeout, retries=retries, transport=transport,
                         sleep=sleep)  # fmt: skip
        self.datasets = Datasets(self.http)
        self.trainings = Trainings(self.http)

    def usage(self) -> Json:
        """This period's GPU seconds (allowance, used, reserved, left) and storage."""
        return self.http.call("GET", "/usage")

    def models(self) -> Json:
        """The families the service trains, their presets and limits, and parameter ranges."""
        return self.http.call("GET", "/models")

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Datasets:
    """Datasets and their files."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def create(
        self, name: str, trigger_word: str | None = None, caption_template: str | None = None
    ) -> Json:
        """A new, empty dataset."""
        body = {"name": name, "trigger_word": trigger_word, "caption_template": caption_template}
        return self.http.call("POST", "/datasets", {k: v for k, v in body.items() if v is not None})

    def get(self, dataset_id: int) -> Json:
        """One dataset with its item counts."""
        return self.http.call("GET", f"/datasets/{dataset_id}")

    def list(self) -> Iterator[Json]:
        """Every dataset of the account, newest first (fetched a page at a time)."""
        return self.http.pages("/datasets")

    def list_items(self, dataset_id: int) -> Iterator[Json]:
        """The dataset's files in upload order, with their ingest state and reasons."""
        return self.http.pages(f"/datasets/{dataset_id}/items")

    def upload_dir(
        self,
        directory: str | Path,
        dataset_id: int | None = None,
        *,
        name: str | None = None,
        trigger_word: str | None = None,
        workers: int = 4,
        on_progress: Callable[[UploadProgress], None] | None = None,
    ) -> UploadResult:
        """Send a folder's images, clips and zips (captions from same-name .txt files) into
        `dataset_id`, or into a new dataset named `name` (default: the folder's name).

        Calling it again with the same folder and dataset resumes: complete files are skipped,
        and an unfinished large file sends only the parts storage does not hold yet."""
        folder = Path(directory)
        if dataset_id is None:
            dataset = self.create(name or folder.resolve().name, trigger_word)
        else:
            dataset = self.get(dataset_id)
        return FolderUpload(self.http, dataset, workers, on_progress).run(folder)

    def wait_ingested(
        self, dataset_id: int, timeout: float = 600.0, interval: float = 1.0
    ) -> list[Json]:
        """Wait until ingest has decided on every uploaded file; the items (ready or rejected
        with a reason)."""
        deadline = time.monotonic() + timeout
        while True:
            items = list(self.list_items(dataset_id))
            if all(item["status"] != INGESTING for item in items):
                return items
            if time.monotonic() > deadline:
                raise TimedOut(f"Dataset {dataset_id} is still being checked; try again later.")
            self.http.sleep(interval)


class Trainings:
    """Training runs and their files."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def create(
        self,
        dataset_id: int,
        family: str,
        preset: str | None = None,
        parameters: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        webhook: str | None = None,
        webhook_events_filter: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        """Start a run. Sent with an Idempotency-Key (a new one per call unless given), so the
        retries after a lost answer get the same run and reserve GPU time once."""
        body: dict[str, Any] = {
            "dataset_id": dataset_id, "family": family, "preset": preset,
            "parameters": parameters, "name": name, "webhook": webhook,
        }  # fmt: skip
        if webhook_events_filter is not None:
            body["webhook_events_filter"] = list(webhook_events_filter)
        body = {k: v for k, v in body.items() if v is not None}
        key = idempotency_key or str(uuid.uuid4())
        return self.http.call("POST", "/trainings", body, idempotency_key=key)

    def get(self, run_id: int) -> Json:
        """One run with its live progress."""
        return self.http.call("GET", f"/trainings/{run_id}")

    def list(self) -> Iterator[Json]:
        """Every run of the account, newest first (fetched a page at a time)."""
        return self.http.pages("/trainings")

    def cancel(self, run_id: int) -> Json:
        """Stop a run: a queued one at once, a running one at its next step."""
        return self.http.call("POST", f"/trainings/{run_id}/cancel")

    def continue_(self, run_id: int, extra_steps: int, idempotency_key: str | None = None) -> Json:
        """A new run resuming a finished one from its last checkpoint for `extra_steps` more."""
        key = idempotency_key or str(uuid.uuid4())
        return self.http.call("POST", f"/trainings/{run_id}/continue",
                              {"extra_steps": extra_steps}, idempotency_key=key)  # fmt: skip

    def wait(
        self,
        run_id: int,
        on_progress: Callable[[Json], None] | None = None,
        *,
        interval: float = 2.0,
        timeout: float | None = None,
    ) -> Json:
        """Poll the run until it has finished; `on_progress` gets the run at every poll.
        Returns the finished run (whatever its status: check `status`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if on_progress is not None:
                on_progress(run)
            if run["status"] in FINISHED:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimedOut(f"Run {run_id} is still {run['status']}; it goes on on the server.")
            self.http.sleep(interval)

    def artifacts(self, run_id: int) -> list[Json]:
        """The run's files (kind, name, filename) with short-lived download URLs."""
        return self.http.call("GET", f"/trainings/{run_id}/artifacts")["data"]

    def download(
        self, run_id: int, kinds: Iterable[str] = ("lora",), directory: str | Path = "."
    ) -> list[Path]:
        """Save the run's files of these kinds ("lora", "comfyui", "checkpoint", "sample", ...,
        or "all") in `directory` under the names the service gives them; their paths."""
        wanted = set(kinds)
        files = self.artifacts(run_id)
        chosen = [f for f in files if "all" in wanted or f["kind"] in wanted]
        if not chosen:
            offered = ", ".join(sorted({f["kind"] for f in files})) or "none yet"
            raise AttuneError(f"Run {run_id} has no {' or '.join(sorted(wanted))} file "
                              f"(it offers: {offered}).")  # fmt: skip
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for entry in chosen:
            # The name comes from the server: keep only its last part, inside `folder`.
            base = Path(entry["filename"].replace("\\", "/")).name.lstrip(".")
            target = folder / (base or f"run-{run_id}-{entry['kind']}.safetensors")
            self.http.download(entry["url"], target)
            saved.append(target)
        return saved
