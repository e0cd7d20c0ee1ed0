"""A person drops a folder of images (with one .txt caption) into the dataset page: progress
bars move, every image becomes ready with a thumbnail, the caption is paired, and every file
the service refuses says so and why. A large zip goes up in parts and survives a reload."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.showcase import upload_progress
from tests.support.live_service import LiveService
from tests.support.media_files import jpeg_bytes, zip_bytes

PASSWORD = "correct horse battery staple"
IMAGES = 6
MB = 1024 * 1024
LONG_CAPTION = "un chat sur la plage, " * 20 + "au coucher du soleil"


def _folder(root: Path) -> Path:
    folder = root / "holiday"
    folder.mkdir()
    for index in range(IMAGES):
        # Large enough (about 300 KB each) for the throttled upload to take a few seconds.
        (folder / f"{index:02d}.jpg").write_bytes(jpeg_bytes((900, 700), quality=100))
    (folder / "00.txt").write_text(LONG_CAPTION, encoding="utf-8")
    # Refused by ingest (not a picture), by type, and by size before a byte is sent.
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg" * 100)
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4")
    with open(folder / "huge.png", "wb") as huge:
        huge.truncate(51 * MB)
    return folder


def _sign_up_and_create(page: Page, base: str) -> None:
    page.goto(f"{base}/sign-up")
    page.locator("input[name=name]").fill("Ada Lovelace")
    page.locator("input[name=email]").fill("ada@example.com")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=adult]").check()
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{base}/dashboard")
    page.goto(f"{base}/datasets")
    page.locator("input[name=name]").fill("Holiday")
    page.locator("input[name=trigger_word]").fill("sks_cat")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.locator("h1")).to_have_text("Holiday")


class HeldUploads:
    """The page's PUTs to storage, counted where they are routed (none missed or late): the
    first `let_through` go on, later ones hang (a lost connection) until release()."""

    def __init__(self, page: Page, let_through: int = 0) -> None:
        self.puts: list[str] = []
        self.let_through, self.holding = let_through, True
        page.route("**/storage/local/upload/**", self._route)

    def _route(self, route: Route) -> None:
        self.puts.append(route.request.url)
        if not self.holding or len(self.puts) <= self.let_through:
            route.continue_()

    def release(self) -> int:
        """Let every later PUT through; the count so far."""
        self.holding = False
        return len(self.puts)


UPLOADER_INPUT = "#uppy-dashboard input[type=file]:not([webkitdirectory])"


def _start_multipart(page: Page, archive: Path) -> dict[str, object]:
    """Drop `archive` into the uploader; its Uppy meta once the multipart upload exists."""
    page.locator(UPLOADER_INPUT).first.set_input_files(archive)
    page.wait_for_function("() => window.attuneUppy.getFiles()[0]?.s3Multipart?.uploadId")
    return page.evaluate("() => window.attuneUppy.getFiles()[0].meta")


def _reselect_and_finish(page: Page, archive: Path) -> None:
    """Select the restored ghost's file again and wait for the upload to finish."""
    expect(page.locator(".uppy-Dashboard-Item.is-ghost")).to_have_count(1)
    page.get_by_role("button", name="Add more").click()
    page.locator(UPLOADER_INPUT).first.set_input_files(archive)
    page.wait_for_function(
        "() => window.attuneUppy.getState().totalProgress === 100", timeout=60_000
    )


@pytest.mark.parametrize("live_service", ["sqlite"], indirect=True)
def test_drop_a_folder_and_watch_it_become_ready(
    live_service: LiveService, page: Page, tmp_path: Path
) -> None:
    _sign_up_and_create(page, live_service.url)
    # Slow the upload down so that the progress bars have something to show.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 300_000},
    )
    folder_input = page.locator("#uppy-dashboard input[type=file][webkitdirectory]")
    folder_input.set_input_files(_folder(tmp_path))

    seen = upload_progress(page)
    assert seen[-1] == 100, seen
    assert len([p for p in seen if 0 < p < 100]) >= 2, f"progress did not move: {seen}"
    assert seen == sorted(seen)
    expect(page.locator(".uppy-StatusBar")).to_be_visible()
    # The .txt is a caption; the PDF and the 51 MB picture never join the uploader, they are
    # named with the reason until dismissed, and nothing offers to send them again.
    expect(page.locator(".uppy-Dashboard-Item")).to_have_count(IMAGES + 1)
    refusals = page.locator(".upload-refusals")
    expect(refusals).to_contain_text("notes.pdf")
    expect(refusals).to_contain_text("“huge.png” is larger than 50 MB.")

    ready = page.locator("#items-grid li[data-status=ready]")
    expect(ready).to_have_count(IMAGES, timeout=60_000)
    # The file ingest refused: a red mark with the reason in the uploader, not a green tick.
    broken = page.locator(".uppy-Dashboard-Item.is-error", has_text="broken.jpg")
    expect(broken).to_have_count(1)
    expect(broken.locator(".uppy-Dashboard-Item-errorDetails")).to_have_attribute(
        "aria-label", re.compile("not .*(image|picture)|not a supported", re.IGNORECASE)
    )
    expect(page.locator(".uppy-Dashboard-Item.is-complete")).to_have_count(IMAGES)
    expect(page.get_by_role("button", name=re.compile("retry", re.IGNORECASE))).to_have_count(0)
    expect(page.locator(".uppy-DashboardContent-title")).not_to_contain_text("Uploading")
    refusals.get_by_role("button", name="Dismiss").click()  # they stay until dismissed
    expect(refusals).to_be_hidden()
    page.wait_for_function(
        "n => [...document.querySelectorAll('#items-grid li[data-status=ready] img')]"
        ".filter(img => img.complete && img.naturalWidth > 0).length === n",
        arg=IMAGES,
        timeout=20_000,
    )
    first = page.locator("#items-grid li", has_text="holiday/00.jpg")
    caption = first.locator("textarea.caption")
    expect(caption).to_have_value(LONG_CAPTION)
    # The whole caption shows: the box is as tall as its text.
    assert caption.evaluate("box => box.scrollHeight <= box.clientHeight + 1")
    # The counts follow the grid without a reload.
    expect(page.locator("#item-counts")).to_contain_text(f"{IMAGES} ready · 1 rejected")
    expect(page.locator("#item-counts")).to_contain_text("0 in progress")
    # The grid is sorted by name, whatever the order of upload.
    names = page.locator("#items-grid li .name").all_inner_texts()
    assert names == sorted(names, key=str.lower) and len(names) == IMAGES + 1, names
    page.get_by_role("button", name="Remove 1 rejected").click()
    expect(page.locator("#items-grid li[data-status=rejected]")).to_have_count(0)
    expect(page.locator("#item-counts")).to_contain_text(f"{IMAGES} ready · 0 rejected")
    expect(page.locator(".uppy-Dashboard-Item")).to_have_count(0)  # finished: not restored


@pytest.mark.parametrize("live_service", ["sqlite"], indirect=True)
def test_a_large_zip_goes_up_in_parts_survives_a_reload_and_is_unpacked(
    live_service: LiveService, page: Page, tmp_path: Path
) -> None:
    _sign_up_and_create(page, live_service.url)
    archive = tmp_path / "shoot.zip"
    # Over 16 MB, so two parts; the pictures lie in the second one, after the random bytes.
    archive.write_bytes(
        zip_bytes(
            [("raw.bin", os.urandom(17 * MB)), ("a.jpg", jpeg_bytes()), ("b.jpg", jpeg_bytes())]
        )
    )
    # The connection drops after the first part: later PUTs hang until the page is reloaded.
    held = HeldUploads(page, let_through=1)
    signed: list[int] = []  # the part numbers the page asks the app to sign, in order

    def record_signing(route: Route) -> None:
        signed.append(int(route.request.url.rsplit("/", 1)[1]))
        route.continue_()

    page.route(re.compile(r".*/uploads/\d+/parts/\d+$"), record_signing)
    file = _start_multipart(page, archive)
    assert file["attuneMethod"] == "multipart"  # over 16 MB: resumable parts, signed by the app
    uploads_url = page.locator("#uploader").get_attribute("data-uploads-url")
    # Polled from here: wait_for_function returns once a returned promise settles, even to
    # false, so waiting on a fetch there let the reload come before any part had arrived.
    list_parts = f"() => fetch('{uploads_url}/{file['itemId']}/parts').then(r => r.json())"
    deadline = time.monotonic() + 30
    while not (arrived := [p["PartNumber"] for p in page.evaluate(list_parts)["parts"]]):
        assert time.monotonic() < deadline, "the first part never arrived"
        page.wait_for_timeout(100)
    assert len(arrived) == 1  # the parts go in parallel: either may be the one let through
    missing = sorted({1, 2} - set(arrived))

    page.reload()
    before_reselect = held.release(), len(signed)
    # Golden Retriever brings the file back as a ghost (too big to keep in the browser):
    # selecting it again goes on with the part that had not arrived, for the same item.
    _reselect_and_finish(page, archive)
    assert page.evaluate("() => window.attuneUppy.getFiles()[0].meta.itemId") == file["itemId"]
    # Only the part that had not arrived is sent again.
    assert len(held.puts) - before_reselect[0] == 1, held.puts[before_reselect[0] :]
    assert signed[before_reselect[1] :] == missing

    expect(page.locator("#items-grid li[data-status=ready]")).to_have_count(2, timeout=60_000)
    rejected = page.locator("#items-grid li[data-status=rejected]")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("Not a supported file type")
    expect(page.locator("#item-counts")).to_contain_text("2 ready · 1 rejected · 0 in progress")
    expect(page.locator("#items-grid li", has_text="a.jpg")).to_contain_text("from shoot.zip")


@pytest.mark.parametrize("live_service", ["sqlite"], indirect=True)
def test_a_tab_closed_the_moment_an_upload_began_finishes_the_same_item(
    live_service: LiveService, page: Page, tmp_path: Path
) -> None:
    # The tab is closed the moment the app has made the file's item, before any part arrived:
    # coming back finishes that item (not a second one), each part sent once.
    _sign_up_and_create(page, live_service.url)
    archive = tmp_path / "long.zip"
    archive.write_bytes(zip_bytes([("raw.bin", os.urandom(17 * MB)), ("a.jpg", jpeg_bytes())]))
    held = HeldUploads(page)
    item_id = _start_multipart(page, archive)["itemId"]
    dataset_page = page.url
    page.goto("about:blank")  # the tab is closed at once (a reload waits for the server)
    before_reselect = held.release()
    page.goto(dataset_page)
    _reselect_and_finish(page, archive)
    assert page.evaluate("() => window.attuneUppy.getFiles()[0].meta.itemId") == item_id
    assert len(held.puts) - before_reselect == 2  # no part had arrived: both, once each
    expect(page.locator("#items-grid li[data-status=ready]")).to_have_count(1, timeout=60_000)
    expect(page.locator("#item-counts")).to_contain_text("1 ready · 1 rejected · 0 in progress")
    # Nothing of it is left for a later visit to restore.
    page.reload()
    expect(page.locator(".uppy-Dashboard-Item")).to_have_count(0)
