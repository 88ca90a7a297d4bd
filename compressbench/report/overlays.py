"""Keypoint overlays: frames with the model's keypoints (and a reference's) drawn on, as PNGs.

Drawing is plain numpy: filled discs for points and one-pixel lines joining matching points.
Points are normalised (x, y) in [-1, 1]; u maps to pixel position (u + 1) / 2 * S.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import imageio.v3 as iio
import numpy as np
import torch

from compressbench.errors import CompressbenchError
from compressbench.report.output import write_atomic

MODEL_COLOUR = (1.0, 0.15, 0.15)  # red
REFERENCE_COLOUR = (0.1, 0.8, 1.0)  # cyan: stands out on skin and on green backgrounds
LINE_COLOUR = (1.0, 0.9, 0.1)  # yellow
OUTLINE_COLOUR = (0.0, 0.0, 0.0)

Colour = Sequence[float]


def _as_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().float().numpy()
    return np.asarray(array, dtype=np.float32)


def _to_pixels(points: np.ndarray, size: int) -> np.ndarray:
    return (points + 1.0) / 2.0 * size


def default_radius(size: int) -> float:
    """A disc radius that stays visible from small test frames to 256 px ones (4 px at 256)."""
    return max(1.5, size / 64)


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] != image.shape[2]:
        raise CompressbenchError(f"an overlay needs a (3, S, S) image, got shape {image.shape}")


def draw_keypoints(image, points, colour: Colour = MODEL_COLOUR, radius: Optional[float] = None) -> np.ndarray:
    """A copy of ``image`` (3, S, S) in [0, 1] with a filled disc of ``colour`` (3 floats in [0, 1])
    at each of ``points`` (K, 2), normalised (x, y). A pixel is filled when its centre is within
    ``radius`` pixels of the point; the pixel containing the point is always filled. Points off the
    image are clipped away; non-finite points are skipped. Returns float32 (3, S, S)."""
    out = _as_numpy(image).copy()
    _check_image(out)
    size = out.shape[-1]
    radius = default_radius(size) if radius is None else radius
    centres = np.arange(size, dtype=np.float32) + 0.5
    fill = np.asarray(colour, dtype=np.float32).reshape(3, 1)
    for x, y in _to_pixels(_as_numpy(points).reshape(-1, 2), size):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        mask = (centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2 <= radius**2
        col, row = int(np.floor(x)), int(np.floor(y))
        if 0 <= row < size and 0 <= col < size:
            mask[row, col] = True
        out[:, mask] = fill
    return out


def draw_lines(image, starts, ends, colour: Colour = LINE_COLOUR) -> np.ndarray:
    """A copy of ``image`` (3, S, S) with a one-pixel line from each of ``starts`` (K, 2) to the
    matching ``ends`` (K, 2), both normalised (x, y)."""
    out = _as_numpy(image).copy()
    _check_image(out)
    size = out.shape[-1]
    fill = np.asarray(colour, dtype=np.float32)
    starts = _to_pixels(_as_numpy(starts).reshape(-1, 2), size)
    ends = _to_pixels(_as_numpy(ends).reshape(-1, 2), size)
    for (x0, y0), (x1, y1) in zip(starts, ends, strict=True):
        if not np.all(np.isfinite([x0, y0, x1, y1])):
            continue
        steps = int(np.ceil(max(abs(x1 - x0), abs(y1 - y0)))) + 1
        steps = min(steps, 4 * size)  # a wild prediction far off the image is still a short loop
        t = np.linspace(0.0, 1.0, steps)
        cols = np.floor(x0 + t * (x1 - x0)).astype(int)
        rows = np.floor(y0 + t * (y1 - y0)).astype(int)
        inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
        out[:, rows[inside], cols[inside]] = fill[:, None]
    return out


def overlay(image, model_points, reference_points=None, radius: Optional[float] = None) -> np.ndarray:
    """One frame with lines to the reference points, the reference points, then the model's on top;
    every disc has a one-pixel dark outline so it stays visible on any background."""
    out = _as_numpy(image)
    radius = default_radius(out.shape[-1]) if radius is None else radius
    layers = [(model_points, MODEL_COLOUR)]
    if reference_points is not None:
        out = draw_lines(out, model_points, reference_points)
        layers.insert(0, (reference_points, REFERENCE_COLOUR))
    for points, colour in layers:
        out = draw_keypoints(out, points, OUTLINE_COLOUR, radius + 1)
        out = draw_keypoints(out, points, colour, radius)
    return out


def to_uint8_hwc(image) -> np.ndarray:
    """(3, S, S) floats in [0, 1] -> (S, S, 3) uint8 for an image file."""
    array = np.clip(_as_numpy(image), 0.0, 1.0)
    return np.round(array.transpose(1, 2, 0) * 255).astype(np.uint8)


def check_overlay_dir(directory: str | Path) -> Path:
    """Fail before any work if ``directory`` cannot hold the overlays (it may not exist yet)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CompressbenchError(f"overlay folder {directory} is a file; give a folder path")
    parent = directory.parent if str(directory.parent) else Path(".")
    if not directory.exists() and not parent.is_dir():
        raise CompressbenchError(f"cannot create overlay folder {directory}: folder {parent} does not exist")
    return directory


def write_overlays(directory: str | Path, frames, model_points, teacher_points=None, limit: int = 8) -> list[Path]:
    """Write up to ``limit`` PNGs (``overlay_000.png``, ...) of ``frames`` (a FrameBatch or an
    (N, 3, S, S) tensor) with ``model_points`` (N, K, 2) in red and, when given, ``teacher_points``
    (N, K, 2) in cyan joined to the model's by yellow lines. Creates ``directory`` (not its parents).
    Returns the written paths."""
    directory = check_overlay_dir(directory)
    images = getattr(frames, "images", frames)
    count = min(int(limit), len(images), len(model_points))
    if teacher_points is not None:
        count = min(count, len(teacher_points))
    directory.mkdir(exist_ok=True)
    written = []
    for index in range(count):
        reference = None if teacher_points is None else teacher_points[index]
        picture = overlay(images[index], model_points[index], reference)
        png = iio.imwrite("<bytes>", to_uint8_hwc(picture), extension=".png")
        written.append(write_atomic(directory / f"overlay_{index:03d}.png", png))
    return written


__all__ = [
    "LINE_COLOUR",
    "OUTLINE_COLOUR",
    "MODEL_COLOUR",
    "REFERENCE_COLOUR",
    "check_overlay_dir",
    "draw_keypoints",
    "draw_lines",
    "overlay",
    "to_uint8_hwc",
    "write_overlays",
]
