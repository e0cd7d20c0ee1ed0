"""The library against a fake /api/v1 (httpx.MockTransport): problems become typed errors,
retries happen only where they cannot do something twice, a folder upload resumes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from attune_client import Client, ConnectionFailed, Invalid, ServerError, Unauthorized

from tests.client.fake_api import BASE, KEY, FakeApi, Item, problem


def client_for(api: FakeApi, key: str = KEY) -> Client:
    return Client(BASE, key, transport=api.transport(), sleep=lambda _: None)


def test_a_problem_becomes_a_typed_error_with_its_detail_and_field_errors() -> None:
    api = FakeApi()
    api.fail.append(("POST", "/trainings", problem(
        422, "Some settings need another look.",
        errors={"parameters.steps": "Must be between 1 and 20000."})))  # fmt: skip
    with pytest.raises(Invalid) as refused:
        client_for(api).trainings.create(1, "tiny-sd", parameters={"steps": 0})
    assert refused.value.status == 422
    assert refused.value.errors == {"parameters.steps": "Must be between 1 and 20000."}
    assert "parameters.steps: Must be between 1 and 20000." in str(refused.value)
    with pytest.raises(Unauthorized, match="not known"):
        client_for(api, "att_live_revoked").usage()
    assert len(api.seen("POST", "/trainings")) == 1  # a 422 is final


def test_a_training_post_is_retried_with_the_same_idempotency_key() -> None:
    api = FakeApi()
    # The answer is lost after the server may have acted, then the first request still runs.
    api.fail.append(("POST", "/trainings", httpx.ReadTimeout("lost")))
    api.fail.append(("POST", "/trainings", problem(409, "Still processing.")))
    api.fail[-1][2].headers["Retry-After"] = "0"
    run = client_for(api).trainings.create(1, "tiny-sd", "character")
    assert run["id"] == 7
    sent = api.seen("POST", "/trainings")
    assert len(sent) == 3
    assert len({r.headers["Idempotency-Key"] for r in sent}) == 1  # one logical call, one key
    client_for(api).trainings.create(1, "tiny-sd", "character")
    assert api.seen("POST", "/trainings")[-1].headers["Idempotency-Key"] != sent[0].headers[
        "Idempotency-Key"]  # fmt: skip


def test_a_post_without_idempotency_is_not_retried_after_it_may_have_acted() -> None:
    api = FakeApi()
    api.fail.append(("POST", "/datasets", httpx.ReadTimeout("lost")))
    with pytest.raises(ConnectionFailed):
        client_for(api).datasets.create("Cats")
    assert len(api.seen("POST", "/datasets")) == 1
    # A connection never made did nothing: that one is retried, as are reads after a 503.
    api.fail.append(("POST", "/datasets", httpx.ConnectError("refused")))
    assert client_for(api).datasets.create("Cats")["name"] == "Cats"
    api.fail += [("GET", "/usage", httpx.Response(503, text="<html>busy</html>"))] * 2
    assert client_for(api).usage()["plan"]["label"] == "Pro"
    api.fail += [("GET", "/usage", httpx.Response(502, text="bad gateway"))] * 5
    with pytest.raises(ServerError, match="bad gateway"):
        client_for(api).usage()


def write_folder(folder: Path) -> None:
    folder.mkdir()
    (folder / "a.png").write_bytes(b"a" * 8)
    (folder / "c.png").write_bytes(b"c" * 5)
    (folder / "c.txt").write_text("a cat, sitting\n")
    (folder / "clips").mkdir()
    (folder / "clips" / "walk.mp4").write_bytes(bytes(range(25)))
    (folder / "notes.doc").write_bytes(b"not media")
    (folder / "orphan.txt").write_text("no image")
    (folder / ".DS_Store").write_bytes(b"hidden")


def test_a_rerun_skips_complete_files_and_sends_only_the_missing_parts(tmp_path: Path) -> None:
    api, folder = FakeApi(part_size=10), tmp_path / "cats"
    write_folder(folder)
    (folder / "e.png").write_bytes(b"eee")
    api.items[1] = Item(1, "a.png", 8, status="ready")  # in from an earlier run
    # walk.mp4 was interrupted after its first part; c.png's single PUT never completed;
    # e.png was changed since (another size): another file.
    api.items[2] = Item(2, "clips/walk.mp4", 25, part_size=10, parts={1: bytes(range(10))})
    api.items[3] = Item(3, "c.png", 5, caption="a cat, sitting")
    api.items[4] = Item(4, "e.png", 9)
    # Part 3's URL has expired by the time it is sent: it is signed again.
    api.fail.append(("PUT", "bucket.test/2/3", problem(403, "This upload link has expired.")))
    seen: list[int] = []
    result = client_for(api).datasets.upload_dir(
        folder, 1, on_progress=lambda p: seen.append(p.bytes_done)
    )
    assert result.already_there == ["a.png"]
    assert sorted(result.uploaded) == ["c.png", "clips/walk.mp4", "e.png"]
    assert list(result.refused) == ["notes.doc"] and "not a supported file" in str(result.refused)
    assert result.unmatched_captions == ["orphan.txt"] and not result.failed
    walk = api.items[2]
    assert walk.status == "uploaded" and b"".join(walk.parts[n] for n in (1, 2, 3)) == bytes(
        range(25))  # fmt: skip
    # Part 1 was held; part 3 went twice, the second time to a URL signed again.
    assert sorted(r.url.path for r in api.seen("PUT", "/2/")) == ["/2/2", "/2/3", "/2/3"]
    assert len(api.seen("GET", "/uploads/2/parts/3")) == 1
    # c.png goes on in the same item; the old e.png is dropped and the new one sent anew.
    assert api.items[3].status == "uploaded" and api.items[3].parts == {0: b"ccccc"}
    assert [r.url.path for r in api.seen("DELETE", "/uploads/")] == ["/api/v1/datasets/1/uploads/4"]
    (new_e,) = [item for item in api.items.values() if item.filename == "e.png"]
    assert (new_e.size, new_e.status) == (3, "uploaded")
    assert seen[-1] == 25 + 5 + 3 and seen == sorted(seen)
    assert not api.seen("PUT", "/1/") and ".DS_Store" not in str(api.log)


def test_an_interrupted_upload_is_reported_and_the_next_run_finishes_it(tmp_path: Path) -> None:
    api, folder = FakeApi(part_size=10), tmp_path / "cats"
    write_folder(folder)
    # Part 2 of walk.mp4 (item 3) fails on every retry: storage is down for a while.
    api.fail += [("PUT", "bucket.test/3/2", httpx.Response(500, text="storage down"))] * 5
    first = client_for(api).datasets.upload_dir(folder, 1)
    assert first.failed == {"clips/walk.mp4": "storage down"}
    assert sorted(first.uploaded) == ["a.png", "c.png"]
    held = set(api.items[3].parts)
    assert 2 not in held and api.items[3].status == "uploading"
    sent_before = len(api.seen("PUT", "bucket.test/3/"))
    second = client_for(api).datasets.upload_dir(folder, 1)
    assert second.uploaded == ["clips/walk.mp4"] and not second.failed
    assert sorted(second.already_there) == ["a.png", "c.png"]
    assert [i.status for i in api.items.values()] == ["uploaded"] * 3
    resent = {
        int(r.url.path.rsplit("/", 1)[1]) for r in api.seen("PUT", "bucket.test/3/")[sent_before:]
    }
    assert resent == {1, 2, 3} - held
