"""Video clips for training and previews: probe, read (resampled and trimmed), write mp4/webp.

Only local regular files are read, through a Python file handle with the demuxer chosen from
the file suffix, so FFmpeg never resolves protocols (http:, concat:, ...), never guesses a
playlist format (hls, concat) from the content and cannot open side files: nested opens that
some demuxers attempt (mov data references) are refused.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import DatasetError

if TYPE_CHECKING:
    import av
    from PIL import Image

DEMUXERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
MAX_CLIP_SECONDS = 600.0  # decoding is streamed, but a longer upload is a mistake, not data
_TIME_EPS = 1e-4  # seconds; absorbs rounding of rational timestamps to float


class ClipError(DatasetError):
    """A video clip cannot be used for training."""


class UnsupportedClipError(ClipError):
    """Not a regular local file, or a container type we do not read."""


class CorruptClipError(ClipError):
    """The container or its video stream does not decode."""


class ClipTooLongError(ClipError):
    """The clip is longer than the allowed duration."""


class ClipTooShortError(ClipError):
    """The clip holds fewer frames than the shortest allowed length."""


@dataclass(frozen=True)
class ClipProbe:
    """Header facts about a clip; width/height are in display orientation."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration: float  # seconds
    rotation: int = 0  # degrees counter-clockwise from the display matrix


@dataclass(frozen=True)
class ClipInfo:
    """Frames read for training: resampled to ``fps``, trimmed to an allowed length."""

    frames: list[Image.Image]
    fps: float
    source: ClipProbe


def probe_clip(path: Path | str) -> ClipProbe:
    """Read a clip's size, frame rate, frame count and duration (decodes one frame for rotation)."""
    with _open_clip(path) as container:
        return _probe_stream(container, _video_stream(container, path), path)[0]


def read_clip(
    path: Path | str,
    fps: float,
    frame_counts: Sequence[int],
    max_side: int,
    max_seconds: float = MAX_CLIP_SECONDS,
) -> ClipInfo:
    """Frames resampled to fps, trimmed to the longest allowed count, longer side <= max_side."""
    if fps <= 0 or not frame_counts or max_side <= 0:
        raise ValueError("fps, frame_counts and max_side must be positive")
    with _open_clip(path) as container:
        probe, decoded = _probe_stream(container, _video_stream(container, path), path)
        if probe.duration > max_seconds:
            raise ClipTooLongError(
                f"clip is {probe.duration:.1f}s long; the limit is {max_seconds:.0f}s", path
            )
        limit = max(frame_counts)
        frames = [
            _display_image(frame, probe.rotation, max_side)
            for frame in _resample(decoded, fps, limit, probe.fps, path)
        ]
    usable = [count for count in frame_counts if count <= len(frames)]
    if not usable:
        raise ClipTooShortError(
            f"clip holds {len(frames)} frames at {fps:g} fps; at least {min(frame_counts)} needed",
            path,
        )
    return ClipInfo(frames=frames[: max(usable)], fps=float(fps), source=probe)


def write_mp4(frames: Sequence[Image.Image], path: Path | str, fps: float) -> Path:
    """Encode frames as H.264 (yuv420p, even sides) in an mp4 that browsers play."""
    import av

    if not frames:
        raise ValueError("no frames to write")
    width, height = (side - side % 2 for side in frames[0].size)
    if width < 2 or height < 2:
        raise ValueError("frames must be at least 2x2 pixels")
    out = Path(path)
    # faststart moves the index to the front so the preview plays while downloading; the
    # muxer rereads the file for that, hence the read/write handle.
    with (
        open(out, "w+b") as handle,
        av.open(handle, "w", format="mp4", options={"movflags": "+faststart"}) as container,
    ):
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "medium"}
        for image in frames:
            rgb = image.convert("RGB").crop((0, 0, width, height))
            for packet in stream.encode(av.VideoFrame.from_image(rgb)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def write_webp(frames: Sequence[Image.Image], path: Path | str, fps: float) -> Path:
    """Write an animated, looping webp preview (shown inline where mp4 autoplay is blocked)."""
    if not frames:
        raise ValueError("no frames to write")
    out = Path(path)
    rgb = [image.convert("RGB") for image in frames]
    rgb[0].save(
        out,
        format="WEBP",
        save_all=True,
        append_images=rgb[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        quality=80,
    )
    return out


def _refuse_nested_open(url: str, flags: int, options: dict[str, Any]) -> None:
    """io_open hook: a clip must be self-contained, so any side file or URL is refused."""
    raise PermissionError(f"clip tried to open another resource: {url!r}")


@contextmanager
def _open_clip(path: Path | str) -> Iterator[av.container.InputContainer]:
    """Open a local regular file with the demuxer its suffix names; typed errors otherwise."""
    import av

    local = Path(path)
    demuxer = DEMUXERS.get(local.suffix.lower())
    if demuxer is None:
        known = ", ".join(sorted(DEMUXERS))
        raise UnsupportedClipError(f"unsupported video type; use one of {known}", path)
    try:
        mode = os.stat(local).st_mode  # before open(): opening a FIFO would block
    except OSError as exc:
        raise UnsupportedClipError(f"cannot read the file ({exc.strerror})", path) from exc
    if not stat.S_ISREG(mode):
        raise UnsupportedClipError("not a regular file", path)
    with open(local, "rb") as handle:
        try:
            container = av.open(handle, format=demuxer, io_open=_refuse_nested_open)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise CorruptClipError(f"not a readable {demuxer} file ({exc})", path) from exc
        with container:
            yield container


def _video_stream(container: av.container.InputContainer, path: Path | str) -> Any:
    """The first video stream, decoded with threads; CorruptClipError if there is none."""
    if not container.streams.video:
        raise CorruptClipError("the file has no video stream", path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _probe_stream(
    container: Any, stream: Any, path: Path | str
) -> tuple[ClipProbe, Iterator[av.VideoFrame]]:
    """Header values plus the decoded frames (first one included); rotation needs a frame."""
    import av

    frames = container.decode(stream)
    try:
        first = next(frames, None)
    except av.FFmpegError as exc:
        raise CorruptClipError(f"the video stream does not decode ({exc})", path) from exc
    if first is None:
        raise CorruptClipError("the video stream has no frames", path)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    frame_count = stream.frames or round(duration * fps)
    rotation = int(first.rotation or 0)
    width, height = first.width, first.height
    if rotation % 180:
        width, height = height, width
    probe = ClipProbe(width, height, fps, int(frame_count), duration, rotation)
    # Decoding goes on from here rather than seeking back, which not every file supports.
    return probe, itertools.chain([first], frames)


def _resample(
    frames: Iterator[av.VideoFrame], fps: float, limit: int, source_fps: float, path: Path | str
) -> Iterator[av.VideoFrame]:
    """Yield the source frame nearest to each time k/fps (k < limit) inside the clip."""
    import av

    step = 1.0 / fps
    start: float | None = None
    previous: tuple[float, Any] | None = None
    emitted = 0
    try:
        for index, frame in enumerate(frames):
            # A frame without a timestamp takes its place from the frame rate instead.
            time = frame.time if frame.time is not None else index / (source_fps or fps)
            start = time if start is None else start
            time -= start
            while emitted < limit and time + _TIME_EPS >= emitted * step:
                target = emitted * step
                nearer_previous = previous is not None and target - previous[0] <= time - target
                yield previous[1] if nearer_previous else frame
                emitted += 1
            if emitted >= limit:
                return
            previous = (time, frame)
    except av.FFmpegError as exc:
        raise CorruptClipError(f"the video stream breaks off ({exc})", path) from exc


def _display_image(frame: av.VideoFrame, rotation: int, max_side: int) -> Image.Image:
    """RGB image upright as players show it, scaled down so the longer side fits max_side."""
    from PIL import Image

    image = frame.to_image()
    if rotation:
        # The display matrix angle is counter-clockwise, like PIL's rotate().
        image = image.rotate(rotation, expand=True)
    longer = max(image.size)
    if longer > max_side:
        scale = max_side / longer
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image
