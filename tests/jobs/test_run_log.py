"""The run log a person reads: their own file names, and how many checkpoints are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.datasets.models import DatasetItem
from app.extensions import db, get_redis
from app.trainings.models import TrainingRun
from tests.app.privacy.support import add_dataset, add_run, make_user
from tests.support.apps import running_app


def test_the_log_names_uploaded_files_and_the_checkpoints_it_keeps(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from app.trainings.services import live_progress
    from jobs import run_files
    from jobs.progress import RunReporter
    from training.results import ProgressEvent

    with running_app(request, "sqlite") as app, app.app_context():
        user_id = make_user()
        dataset_id = add_dataset(user_id, files=2)
        run = db.session.get(TrainingRun, add_run(user_id, dataset_id, status="running"))
        first, second = db.session.scalars(
            select(DatasetItem).where(DatasetItem.dataset_id == dataset_id)
        ).all()
        first.filename, second.filename = "holiday/IMG 0001.png", "cat.png"
        db.session.commit()
        assert run_files.copy_dataset(run, tmp_path / "data") == 2
        on_worker = sorted(path.name for path in (tmp_path / "data").iterdir())
        assert on_worker == [f"item-{first.id}.png", f"item-{second.id}.png"]

        reporter = RunReporter(run, get_redis())
        reporter.uploaded_names = run_files.uploaded_names(run)
        reporter.keep_checkpoints = 2
        message = f"skipped item-{first.id}.png: smaller than 32 px; item-9999.png stays"
        reporter.on_progress(ProgressEvent("log", 0, 2, message=message))
        folder = tmp_path / "out" / "checkpoints"
        for step in (1, 2):
            (folder / f"step-{step:06d}").mkdir(parents=True)
            (folder / f"step-{step:06d}" / "lora_diffusers.safetensors").write_bytes(b"x")
            (folder / f"step-{step:06d}" / "state.json").write_text(
                '{"downloads": {"lora": "lora_diffusers.safetensors"}}', encoding="utf-8"
            )  # as the trainer writes it (training.checkpoints)
            reporter.on_progress(
                ProgressEvent("checkpoint", step, 2, path=str(folder / f"step-{step:06d}"))
            )

        log = [line.split(" ", 1)[1] for line in live_progress(run)["log"]]
    assert log == [
        "skipped holiday/IMG 0001.png: smaller than 32 px; item-9999.png stays",
        "checkpoint saved at step 1 (the newest 2 are kept: step 1)",
        "checkpoint saved at step 2 (the newest 2 are kept: steps 1, 2)",
    ]
