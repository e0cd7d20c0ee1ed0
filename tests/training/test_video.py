"""Reading, resampling and writing clips with PyAV, on clips made here with libx264/libvpx."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from catalogue.families import family_facts
from training.errors import DatasetError
from training.video import (
    ClipTooLongError,
    ClipTooShortError,
    CorruptClipError,
    UnsupportedClipError,
    probe_clip,
    read_clip,
    write_mp4,
    write_webp,
)

WAN_COUNTS = family_facts("wan21-t2v-1.3b").frame_counts


def make_clip(
    path: Path,
    frames: int,
    fps: int,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    rotation: int = 0,
) -> Path:
    """Write a clip whose frame i is a flat grey of level 4*i, so tests can tell frames apart."""
    width, height = size
    fmt = "webm" if path.suffix == ".webm" else "mp4"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "0", "preset": "ultrafast"}
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            pixels = np.full((height, width, 3), 4 * i, dtype=np.uint8)
            pixels[: height // 4, : width // 4] = 255  # marks the top-left corner
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def grey_index(image: Image.Image) -> int:
    """Recover the source frame index from a frame's grey level (bottom-right quarter)."""
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    h, w = pixels.shape
    return round(float(pixels[h // 2 :, w // 2 :].mean()) / 4)


def test_wan_buckets_are_4k_plus_1_up_to_81() -> None:
    assert WAN_COUNTS[:4] == (1, 5, 9, 13)
    assert WAN_COUNTS[-1] == 81 and len(WAN_COUNTS) == 21


def test_probe_reads_size_rate_count_and_duration(tmp_path: Path) -> None:
    probe = probe_clip(make_clip(tmp_path / "a.mp4", frames=30, fps=30))
    assert (probe.width, probe.height) == (64, 48)
    assert probe.fps == pytest.approx(30)
    assert probe.frame_count == 30
    assert probe.duration == pytest.approx(1.0, abs=0.05)


def test_read_resamples_30fps_to_16fps_and_trims_to_a_4k_plus_1_bucket(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=60, fps=30)  # 2 s: 32 frames at 16 fps
    info = read_clip(clip, fps=16, frame_counts=WAN_COUNTS, max_side=512)
    assert len(info.frames) == 29  # largest 4k+1 <= 32
    assert info.fps == 16
    # Each output frame k is the source frame nearest to k/16 s; ties go to the earlier one.
    expected = [math.ceil(k * 30 / 16 - 0.5) for k in range(29)]
    assert [grey_index(f) for f in info.frames] == expected


def test_read_repeats_frames_of_a_slower_clip_and_caps_at_the_largest_bucket(
    tmp_path: Path,
) -> None:
    clip = make_clip(tmp_path / "slow.mp4", frames=48, fps=8)  # 6 s of 8 fps
    info = read_clip(clip, fps=16, frame_counts=WAN_COUNTS, max_side=512)
    assert len(info.frames) == 81
    assert [grey_index(f) for f in info.frames[:6]] == [0, 0, 1, 1, 2, 2]


def test_read_scales_down_but_never_up(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=5, fps=16, size=(64, 48))
    assert read_clip(clip, 16, WAN_COUNTS, max_side=32).frames[0].size == (32, 24)
    assert read_clip(clip, 16, WAN_COUNTS, max_side=1024).frames[0].size == (64, 48)


def test_read_turns_rotated_phone_clips_upright(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "phone.mp4", frames=5, fps=16, size=(64, 48), rotation=-90)
    probe = probe_clip(clip)
    assert (probe.width, probe.height) == (48, 64)
    frame = read_clip(clip, 16, WAN_COUNTS, max_side=512).frames[0]
    assert frame.size == (48, 64)
    # -90 means "turn clockwise to display": the white top-left corner ends up top-right.
    corner = np.asarray(frame.convert("L"))[:8, -8:]
    assert corner.mean() > 200


def test_read_webm(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.webm", frames=10, fps=16, codec="libvpx-vp9")
    assert len(read_clip(clip, 16, WAN_COUNTS, max_side=512).frames) == 9


def test_write_mp4_decodes_back_with_every_frame_and_even_sides(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (33, 25), (10 * i, 0, 0)) for i in range(9)]
    out = write_mp4(frames, tmp_path / "out.mp4", fps=16)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate) == 16
        decoded = list(container.decode(stream))
    assert len(decoded) == 9
    assert (decoded[0].width, decoded[0].height) == (32, 24)
    assert decoded[0].format.name == "yuv420p"
    assert len(read_clip(out, 16, WAN_COUNTS, max_side=64).frames) == 9


def test_write_webp_is_an_animation_at_the_frame_rate(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), (0, 20 * i, 0)) for i in range(5)]
    out = write_webp(frames, tmp_path / "out.webp", fps=16)
    with Image.open(out) as image:
        assert image.format == "WEBP"
        assert image.n_frames == 5
        image.seek(1)
        image.load()  # frame timing is parsed when the frame is decoded
        assert image.info["duration"] == 62  # ms per frame at 16 fps


def test_corrupt_clip_gives_a_typed_dataset_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(CorruptClipError) as caught:
        read_clip(junk, 16, WAN_COUNTS, max_side=64)
    assert isinstance(caught.value, DatasetError)
    assert "junk.mp4" in str(caught.value)


def test_truncated_clip_is_corrupt(tmp_path: Path) -> None:
    good = make_clip(tmp_path / "good.mp4", frames=30, fps=30).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good[: len(good) // 2])  # the index (moov) sits at the end
    with pytest.raises(CorruptClipError):
        probe_clip(cut)


def test_playlist_disguised_as_mp4_is_not_followed(tmp_path: Path) -> None:
    target = make_clip(tmp_path / "secret.mp4", frames=5, fps=16)
    playlist = tmp_path / "list.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{target}\n#EXT-X-ENDLIST\n")
    with pytest.raises(CorruptClipError):
        read_clip(playlist, 16, WAN_COUNTS, max_side=64)


@pytest.mark.parametrize("name", ["http://example.com/a.mp4", "clip.m3u8", "folder.mp4"])
def test_only_local_regular_files_of_known_types_are_read(tmp_path: Path, name: str) -> None:
    (tmp_path / "folder.mp4").mkdir()
    path = name if name.startswith("http") else tmp_path / name
    with pytest.raises(UnsupportedClipError):
        probe_clip(path)


def test_too_long_and_too_short_clips_are_rejected(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "a.mp4", frames=60, fps=30)
    with pytest.raises(ClipTooLongError):
        read_clip(clip, 16, WAN_COUNTS, max_side=64, max_seconds=1.5)
    short = make_clip(tmp_path / "short.mp4", frames=2, fps=16)
    with pytest.raises(ClipTooShortError):
        read_clip(short, 16, (5, 9), max_side=64)


def test_a_sample_is_written_as_png_or_as_mp4_plus_webp_preview(tmp_path: Path) -> None:
    """One writer for training samples and try-it renders."""
    from training.samples import CONTENT_TYPES, write_sample

    frames = [Image.new("RGB", (32, 32), (i * 40, 0, 0)) for i in range(5)]
    [png] = write_sample(frames[:1], tmp_path / "image-0", None)
    assert png.name == "image-0.png" and Image.open(png).size == (32, 32)
    clip = write_sample(frames, tmp_path / "clip-0", 16)
    assert [p.name for p in clip] == ["clip-0.mp4", "clip-0.webp"]
    with Image.open(clip[1]) as preview:
        assert preview.n_frames == 5
    assert {CONTENT_TYPES[p.suffix] for p in [png, *clip]} == {
        "image/png",
        "video/mp4",
        "image/webp",
    }
