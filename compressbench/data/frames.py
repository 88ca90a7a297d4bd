"""User frames: a folder of png/jpg images, one image, or a video file -> S x S RGB frames in [0, 1].

Each picture is resized so its shorter side is S (bilinear with anti-aliasing) and centre-cropped.
Unreadable images in a folder are skipped with a warning and counted in ``FrameBatch.skipped``;
a source that yields no frame at all is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Iterator

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

from compressbench.data.batch import FrameBatch
from compressbench.errors import CompressbenchError, CompressbenchWarning
from compressbench.progress import progress_bar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
READ_ERRORS = (OSError, ValueError, RuntimeError)  # what imageio, Pillow and ffmpeg raise on bad files
_PROGRESS_FROM = 64  # frames; fewer load in well under 2 s


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def to_rgb_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W[, C]) uint8/uint16/float/bool picture -> (3, H, W) float32 in [0, 1]; alpha is dropped."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"unsupported picture shape {array.shape}")
    if array.shape[2] in (1, 2):  # grey (+ alpha)
        array = np.repeat(array[:, :, :1], 3, axis=2)
    array = array[:, :, :3]
    if np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float32) / np.iinfo(array.dtype).max
    else:
        values = np.clip(array.astype(np.float32), 0, 1)
    return torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1)


def resize_and_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size): shorter side to ``size`` (anti-aliased bilinear), centre crop."""
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[:, top : top + size, left : left + size].clamp(0, 1)


def _collect(frames: Iterable[torch.Tensor], total: int, count: int | None, start: int = 0) -> tuple[list[torch.Tensor], int]:
    """Take up to ``count`` frames after the first ``start`` (read, not kept), with a progress bar
    for long loads; the frames taken and how many were read in all."""
    out: list[torch.Tensor] = []
    read = 0
    with progress_bar("loading frames", total=total, enabled=total >= _PROGRESS_FROM) as advance:
        for frame in frames:
            read += 1
            if read <= start:
                continue
            out.append(frame)
            advance()
            if count is not None and len(out) >= count:
                break
    return out, read


def _from_images(files: list[Path], count: int | None, size: int, source: Path, start: int = 0) -> FrameBatch:
    skipped: list[str] = []  # one warning each, given once it is known that some frames were read

    def frames() -> Iterator[torch.Tensor]:
        for file in files:
            try:
                picture = to_rgb_tensor(iio.imread(file))
            except READ_ERRORS as error:
                skipped.append(f"skipped unreadable image {file}: {_first_line(error)}")
                continue
            yield resize_and_crop(picture, size)

    total = max(0, len(files) - start) if count is None else min(count, max(0, len(files) - start))
    images, read = _collect(frames(), total, count, start)
    if not read:  # the error alone: a warning per file would repeat it
        single = len(files) == 1 and files[0] == source
        what = f"none of the {len(files)} image(s) in {source} could be read"
        what = f"{source} could not be read" if single else what
        reason = skipped[0].split(": ", 1)[-1] if skipped else "no frames"
        raise CompressbenchError(f"{what} ({reason}); check the files are valid png/jpg")
    for message in skipped:
        warnings.warn(message, CompressbenchWarning, stacklevel=3)
    return FrameBatch(_stacked(images, size), skipped=len(skipped))


def _stacked(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """(N, 3, size, size); N may be 0 (every frame read was before ``start``)."""
    return torch.stack(images) if images else torch.empty(0, 3, size, size)


def _estimated_frames(meta: dict) -> int:
    """Frames in a video from its duration and frame rate (0 when unknown); only the progress bar uses it."""
    estimate = float(meta.get("duration") or 0) * float(meta.get("fps") or 0)
    return int(round(estimate)) if np.isfinite(estimate) else 0


def _from_video(path: Path, count: int | None, size: int, start: int = 0) -> FrameBatch:
    try:
        reader = imageio_v2.get_reader(path, format="FFMPEG")
    except READ_ERRORS as error:
        raise CompressbenchError(
            f"could not read video {path} ({_first_line(error)}); give a valid video or a folder of images"
        ) from None
    with reader:
        known = max(0, _estimated_frames(reader.get_meta_data()) - start)
        total = known if count is None else min(count, known)

        def frames() -> Iterator[torch.Tensor]:
            decoded = 0
            try:
                for frame in reader:
                    yield resize_and_crop(to_rgb_tensor(frame), size)
                    decoded += 1
            except READ_ERRORS as error:
                if decoded == 0:
                    raise CompressbenchError(
                        f"could not decode video {path} ({_first_line(error)}); give a valid video"
                    ) from None
                warnings.warn(
                    f"video {path} stopped decoding after {decoded} frames: {_first_line(error)}",
                    CompressbenchWarning,
                    stacklevel=4,
                )

        images, read = _collect(frames(), total, count, start)
    if not read:
        raise CompressbenchError(f"video {path} has no frames; give a video with at least one frame")
    return FrameBatch(_stacked(images, size))


def _folder_images(folder: Path) -> list[Path]:
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise CompressbenchError(f"cannot list folder {folder}: {reason}") from None
    if not files:
        raise CompressbenchError(
            f"folder {folder} holds no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images; add some, or use synthetic data"
        )
    return files


def load_frames(source: str | Path, count: int | None = None, size: int = 256, start: int = 0) -> FrameBatch:
    """Frames from a folder of png/jpg images (sorted by name), a single image, or a video file.

    Returns at most ``count`` frames (all when None) of shape (N, 3, size, size); landmarks None.
    ``start`` frames are read first and not kept (frame ``start`` is the first returned), so a
    source read in pieces holds one piece at a time; past the source's end the batch is empty.
    """
    if count is not None and (not isinstance(count, int) or count <= 0):
        raise CompressbenchError(f"count must be a positive integer, got {count!r}")
    if not isinstance(start, int) or start < 0:
        raise CompressbenchError(f"start must be a non-negative integer, got {start!r}")
    if not isinstance(size, int) or size <= 0:
        raise CompressbenchError(f"size must be a positive integer, got {size!r}")
    path = Path(source)
    if not path.exists():
        raise CompressbenchError(
            f"frame source {path} does not exist; give a folder of images, a video file, or 'synthetic'"
        )
    if path.is_dir():
        return _from_images(_folder_images(path), count, size, path, start)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _from_images([path], count, size, path, start)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _from_video(path, count, size, start)
    raise CompressbenchError(
        f"cannot read frames from {path}: expected a folder, a {'/'.join(IMAGE_SUFFIXES)} image "
        f"or a {'/'.join(VIDEO_SUFFIXES)} video"
    )
