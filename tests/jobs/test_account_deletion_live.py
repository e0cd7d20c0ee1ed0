"""Deleting an account on live workers (the training worker and the privacy worker of
Procfile.dev): the run stops within seconds, links and e-mails stop at once, nothing of the
person stays; on SQLite the next person's first run starts clean."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from app.accounts.models import User
from app.billing.models import GpuUsage
from app.extensions import db, get_redis
from app.trainings.models import TrainingRun
from tests.jobs.http_session import PASSWORD, Person, wait_for
from tests.support.accounts import activate_plan
from tests.support.leftovers import (
    footprint_of,
    redis_leftovers,
    storage_leftovers,
    upload_url_records,
)
from tests.support.live_service import LiveService
from tests.support.smtp import SmtpServer

FINISHED = ("succeeded", "failed", "cancelled")
RECEIPT = "Your Attune account has been deleted"


def signed_up(service: LiveService, email: str, name: str) -> tuple[Person, int]:
    """A person on the Pro plan and their user id."""
    person = Person(service, email, name)
    activate_plan(service.app, email, "pro")
    with service.app.app_context():
        return person, db.session.scalar(select(User.id).where(User.email == email))


def delete_account(person: Person) -> None:
    """Confirm the deletion with the password on the account page."""
    response = person.post_form("/account/delete", {"password": PASSWORD})
    assert response.url.rstrip("/") == person.base, response.text[-500:]


def another_device(person: Person) -> requests.Session:
    """A second browser holding a copy of the person's session cookie."""
    device = requests.Session()
    device.cookies.update(person.session.cookies)
    return device


def erased(service: LiveService, user_id: int) -> bool:
    """True once the account row is gone."""
    with service.app.app_context():
        return db.session.get(User, user_id) is None


def test_deleting_the_account_mid_run_stops_it_at_once_and_leaves_nothing(
    live_service: LiveService, mailbox: SmtpServer
) -> None:
    live_service.start_privacy_worker()
    ada, user_id = signed_up(live_service, "ada@example.com", "Ada Lovelace")
    dataset_id = ada.ready_dataset(live_service, images=2)
    run_id = ada.start_run(dataset_id, steps=5000, rank=4, sample_every=5, checkpoint_every=5000)
    status = wait_for(
        live_service, lambda: (s := ada.run_status(run_id))["samples"] and s, 120, "a sample"
    )
    sample = f"/runs/{run_id}/download/sample/{status['samples'][0]}"
    link = ada.get(sample, allow_redirects=False).headers["Location"]
    assert requests.get(link, timeout=10).status_code == 200
    phone = another_device(ada)
    person = footprint_of(live_service.app, user_id)
    wait_for(live_service, lambda: mailbox.messages, 10, "the sign-up e-mail")
    mailbox.clear()

    requested = time.monotonic()
    delete_account(ada)
    assert requests.get(link, timeout=10).status_code == 404  # at once, files still stored
    assert phone.get(f"{live_service.url}/api/runs/{run_id}").status_code == 401

    def run_stopped() -> bool:
        with live_service.app.app_context():
            run = db.session.get(TrainingRun, run_id)
            return run is None or run.status in FINISHED

    wait_for(live_service, run_stopped, 10, "the run to stop")
    stopped_after = time.monotonic() - requested
    wait_for(live_service, lambda: erased(live_service, user_id), 15, "the erasure")
    erased_after = time.monotonic() - requested
    print(f"\nrun stopped after {stopped_after:.1f} s, account erased after {erased_after:.1f} s")
    assert f"[run {run_id} attempt 1] finished: cancelled" in live_service.worker_log.read_text()
    with live_service.app.app_context():  # the ledger keeps the time used, without the person
        usage = db.session.scalars(
            select(GpuUsage).where(GpuUsage.segment_key == f"run:{run_id}:attempt:1")
        ).one()
        assert (usage.user_id, usage.run_id, usage.charged) == (None, None, True)
        assert 0 < usage.gpu_seconds < time.monotonic() - requested + 600
        redis = get_redis()

    wait_for(live_service, lambda: mailbox.messages, 30, "the deletion receipt")
    assert [m["Subject"] for m in mailbox.messages] == [RECEIPT]
    assert requests.get(link, timeout=10).status_code == 404
    assert storage_leftovers(live_service.app, person) == []
    assert upload_url_records(live_service.app, person) == []
    # The erasure's own job record goes once it returns; the receipt's once it is sent.
    wait_for(live_service, lambda: not redis_leftovers(redis, person), 10, "Redis to settle")
    time.sleep(2)
    assert redis_leftovers(redis, person) == {}
    assert [m["Subject"] for m in mailbox.messages] == [RECEIPT]


@pytest.mark.parametrize("live_service", ["sqlite"], indirect=True)
def test_after_a_deletion_the_next_persons_first_run_is_their_own(
    live_service: LiveService,
) -> None:
    live_service.start_privacy_worker()
    ada, ada_id = signed_up(live_service, "ada@example.com", "Ada Lovelace")
    ada_run = ada.start_run(ada.ready_dataset(live_service, images=3), steps=4, rank=4)
    wait_for(live_service, lambda: ada.run_status(ada_run)["status"] in FINISHED, 240, "Ada's run")
    phone = another_device(ada)
    delete_account(ada)
    wait_for(live_service, lambda: erased(live_service, ada_id), 30, "the erasure")

    bob, bob_id = signed_up(live_service, "bob@example.com", "Bob")
    assert bob_id != ada_id
    assert phone.get(f"{live_service.url}/dashboard", allow_redirects=False).status_code == 302
    bob_run = bob.start_run(bob.ready_dataset(live_service, images=2), steps=4, rank=4)
    assert bob_run != ada_run
    status = wait_for(
        live_service,
        lambda: (s := bob.run_status(bob_run))["status"] in FINISHED and s,
        240,
        "Bob's run",
    )
    assert status["status"] == "succeeded", status
    assert [point[0] for point in status["loss_curve"]] == [1, 2, 3, 4]
    assert [line.split(" ", 1)[1] for line in status["log"] if "dataset files" in line] == [
        "copied 2 dataset files to the worker"
    ]
    assert set(status["downloads"]) == {"lora", "comfyui"}
    assert status["used_gpu_seconds"] > 0
    with live_service.app.app_context():
        usage = db.session.scalars(select(GpuUsage).where(GpuUsage.run_id == bob_run)).one()
        assert (usage.user_id, usage.segment_key, usage.charged) == (
            bob_id,
            f"run:{bob_run}:attempt:1",
            True,
        )
    lora = bob.get(f"/runs/{bob_run}/download/lora")
    assert lora.status_code == 200 and len(lora.content) > 1000
