"""The shared live site for the browser tours, and Grace: a subscriber with data on every page.

`serve_site` starts the app and a worker on a SQLite file and a Redis database of their own, so
that the other tests, which empty the shared ones, never touch it. `Showcase` signs Grace up,
gives her the Pro plan, a ready dataset and a short tiny-sd run, and lists the key pages with
the main action on each (what a keyboard user must be able to reach). `upload_progress` reads
the uploader's progress as a person would watch it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask_migrate import upgrade
from PIL import Image, ImageDraw
from playwright.sync_api import BrowserContext, Page
from redis import Redis

from tests.jobs.http_session import Person, wait_for
from tests.support.accounts import activate_plan
from tests.support.live_service import LiveService, serve_with_worker
from tests.support.processes import free_port

SITE_REDIS_DB = 7  # the other tests flush database 0
FINISHED = ("succeeded", "failed", "cancelled")


def serve_site(request: pytest.FixtureRequest, folder: Path) -> Iterator[LiveService]:
    """A migrated app on its own database, served over HTTP with a worker beside it."""
    from app import create_app

    port = free_port()
    redis_url = request.getfixturevalue("redis_server").url.rsplit("/", 1)[0]
    redis_url = f"{redis_url}/{SITE_REDIS_DB}"
    application = create_app(
        {
            "env": "testing",
            "instance_path": folder / "instance",
            "secret_key": "browser-site-secret-" + "x" * 32,
            "database_url": f"sqlite:///{folder / 'attune.db'}",
            "redis_url": redis_url,
            "base_url": f"http://127.0.0.1:{port}",
            "smtp_host": "127.0.0.1",
            "smtp_port": request.getfixturevalue("smtp_server").port,
            "smtp_starttls": False,
        }
    )
    with application.app_context():
        upgrade()
    Redis.from_url(redis_url).flushdb()
    yield from serve_with_worker(application, port, folder)


def add_webhook_endpoint(service: LiveService) -> int:
    """Grace's webhook endpoint with a test event on its way (its host does not resolve here,
    so the log fills with retried attempts, as it would for a mistyped URL)."""
    from sqlalchemy import select

    from app.accounts.models import User
    from app.extensions import db
    from app.webhooks.events import send_test_event
    from app.webhooks.models import EVENT_TYPES, WebhookEndpoint
    from app.webhooks.signing import new_secret

    with service.app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "grace@example.com"))
        endpoint = WebhookEndpoint(
            user_id=user_id, url="https://hooks.grace-studio.example/attune/runs",
            description="Studio render farm", event_types=list(EVENT_TYPES), secret=new_secret(),
        )  # fmt: skip
        db.session.add(endpoint)
        db.session.commit()
        send_test_event(endpoint)
        return endpoint.id


def upload_progress(page: Page, timeout: float = 60) -> list[int]:
    """Uppy's total progress (0-100), sampled every 50 ms until it reaches 100 or time is up."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = page.evaluate("() => window.attuneUppy.getState().totalProgress")
        if not seen or progress != seen[-1]:
            seen.append(progress)
        if progress == 100:
            break
        page.wait_for_timeout(50)
    return seen


def portrait_png(seed: int, size: int = 64) -> bytes:
    """A small picture (a grainy coloured disc on a gradient), different for each seed."""
    image = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    tint = [(70, 90, 200), (200, 110, 60), (40, 150, 110), (170, 60, 150)][seed % 4]
    image = Image.blend(image, Image.new("RGB", image.size, tint), 0.6)
    margin = size // 5 + seed
    ImageDraw.Draw(image).ellipse(
        (margin, margin, size - margin, size - margin), fill=(250, 235 - 20 * seed, 180)
    )
    # A little grain: real photos do not compress to nothing, and uploads take a moment.
    grain = Image.effect_noise(image.size, 60).convert("RGB")
    image = Image.blend(image, grain, 0.15)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class KeyPage:
    """One page of the tour: where it is and the main action on it."""

    name: str
    path: str
    signed_in: bool
    primary: str  # a selector for the main button or link
    status: int = 200


@dataclass
class Showcase:
    """Grace's account on the shared site, with a dataset and a run."""

    service: LiveService
    person: Person
    dataset_id: int
    run_id: int
    endpoint_id: int = 0

    @classmethod
    def create(cls, service: LiveService) -> Showcase:
        """Sign Grace up, subscribe her, upload a dataset and start a 4-step run."""
        person = Person(service, "grace@example.com", name="Grace Hopper")
        activate_plan(service.app, "grace@example.com", "pro")
        dataset_id = person.create_dataset("Studio portraits", "sks_grace")
        for index in range(3):
            person.upload(dataset_id, f"portrait-{index}.png", portrait_png(index))

        def ready() -> bool:
            items = person.get(f"/api/datasets/{dataset_id}/items").json()["items"]
            return all(item["status"] == "ready" for item in items)

        wait_for(service, ready, 60, "ingest of the showcase dataset")
        response = person.post_json(
            "/api/runs",
            {
                "dataset_id": dataset_id,
                "family": "tiny-sd",
                "preset": "character",
                "name": "Grace portraits v1",
                "params": {"steps": 4, "rank": 4, "sample_every": 2, "checkpoint_every": 2},
            },
        )
        assert response.status_code == 201, response.text
        run_id = int(response.json()["id"])
        return cls(service, person, dataset_id, run_id, add_webhook_endpoint(service))

    def wait_trained(self) -> dict[str, Any]:
        """Wait until the run has finished; it must have succeeded."""
        status = wait_for(
            self.service,
            lambda: (s := self.person.run_status(self.run_id))["status"] in FINISHED and s,
            180,
            "the showcase run",
        )
        assert status["status"] == "succeeded", status
        return status

    def sign_in(self, context: BrowserContext) -> None:
        """Give the browser context Grace's session cookie."""
        context.add_cookies(
            [
                {"name": cookie.name, "value": cookie.value or "", "url": self.service.url}
                for cookie in self.person.session.cookies
            ]
        )

    def key_pages(self) -> list[KeyPage]:
        """Every page a person meets, with its main action; the run pages come last."""
        return [
            KeyPage("landing", "/", False, "main a.button >> text=Create an account"),
            KeyPage("sign-up", "/sign-up", False, "main button[type=submit]"),
            KeyPage("sign-in", "/sign-in", False, "main button[type=submit]"),
            KeyPage("pricing", "/pricing", False, "#choose-pro"),
            KeyPage("dashboard", "/dashboard", True, "#new-run-button"),
            KeyPage("datasets", "/datasets", True, "main button[type=submit]"),
            KeyPage("dataset", f"/datasets/{self.dataset_id}", True, "#bucket-preview button"),
            KeyPage("new-run", "/runs/new", True, "#new-run button[type=submit]"),
            KeyPage("billing", "/billing", True, "#cancel-button"),
            KeyPage("my-data", "/my-data", True, "#exports button[type=submit]"),
            KeyPage("account", "/account", True, "#profile button[type=submit]"),
            KeyPage("webhooks", "/account/webhooks", True, "#new-endpoint button[type=submit]"),
            KeyPage("webhook", f"/account/webhooks/{self.endpoint_id}", True, "#endpoint button"),
            KeyPage("api-keys", "/account/api-keys", True, "#create-key button[type=submit]"),
            KeyPage("api-reference", "/docs/api", False, "main a[href='/api/openapi.json']"),
            KeyPage("privacy-policy", "/privacy", True, "main a[href='/my-data']"),
            KeyPage("not-found", "/no-such-page", True, "#error a.button", status=404),
            KeyPage("runs", "/runs", True, f"main a[href='/runs/{self.run_id}']"),
            KeyPage("run", f"/runs/{self.run_id}", True, "a.button[href$='/download/lora']"),
        ]
