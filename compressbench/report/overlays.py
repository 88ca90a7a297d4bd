"""Keypoint overlays: frames with the model's keypoints (and a reference's) drawn on, as PNGs.

Drawing is plain numpy: the model's points are filled red discs, the reference's are cyan rings
around them (so a point where both agree shows both), one-pixel yellow lines join matching points,
and a legend strip under the picture (drawn by matplotlib) says which is which.
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
from compressbench.files import check_writable, write_atomic

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


def draw_rings(image, points, colour: Colour, radius: float, width: float = 1.5) -> np.ndarray:
    """A copy of ``image`` (3, S, S) with a ring of ``colour`` around each of ``points``: the pixels
    whose centres lie between ``radius - width`` and ``radius`` pixels from the point."""
    out = _as_numpy(image).copy()
    _check_image(out)
    size = out.shape[-1]
    centres = np.arange(size, dtype=np.float32) + 0.5
    fill = np.asarray(colour, dtype=np.float32).reshape(3, 1)
    for x, y in _to_pixels(_as_numpy(points).reshape(-1, 2), size):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        distance = np.sqrt((centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2)
        out[:, (distance <= radius) & (distance >= radius - width)] = fill
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
    """One frame with lines to the reference points, the reference's rings, then the model's discs
    on top; discs and rings have dark edges so they stay visible on any background, and a disc
    inside a ring (model and reference agree) leaves both visible."""
    out = _as_numpy(image)
    radius = default_radius(out.shape[-1]) if radius is None else radius
    if reference_points is not None:
        out = draw_lines(out, model_points, reference_points)
        ring = radius + 2.5
        out = draw_rings(out, reference_points, OUTLINE_COLOUR, ring + 1, 3.5)
        out = draw_rings(out, reference_points, REFERENCE_COLOUR, ring, 1.5)
    out = draw_keypoints(out, model_points, OUTLINE_COLOUR, radius + 1)
    return draw_keypoints(out, model_points, MODEL_COLOUR, radius)


LEGEND_HEIGHT_PX = 22


def legend_strip(width: int, model: str = "model", reference: Optional[str] = None) -> np.ndarray:
    """A (3, H, width) strip saying which marker is which (matplotlib draws the text), to put under
    an overlay."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    def marker(colour, filled):
        return Line2D([], [], lw=0, marker="o", markersize=7, markeredgecolor=OUTLINE_COLOUR if filled else colour,
                      markerfacecolor=colour if filled else "none", markeredgewidth=1 if filled else 2)  # fmt: skip

    handles = [marker(MODEL_COLOUR, True)]
    labels = [f"{model} (disc)"]
    if reference is not None:
        handles += [marker(REFERENCE_COLOUR, False), Line2D([], [], color=LINE_COLOUR, lw=2)]
        labels += [f"{reference} (ring)", "displacement"]
    wide = width >= 100 * len(labels)
    height = LEGEND_HEIGHT_PX if wide else LEGEND_HEIGHT_PX * len(labels) // 2 + 8
    figure = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor="white")
    FigureCanvasAgg(figure)  # headless raster canvas
    figure.legend(handles, labels, loc="center", ncol=len(labels) if wide else 1, fontsize=7 if wide else 5,
                  frameon=False, handletextpad=0.3, columnspacing=1.0, borderaxespad=0)  # fmt: skip
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[:height, :width, :3].astype(np.float32) / 255.0
    return pixels.transpose(2, 0, 1)


def with_legend(picture, model: str = "model", reference: Optional[str] = None) -> np.ndarray:
    """``picture`` (3, H, W) with :func:`legend_strip` appended underneath."""
    picture = _as_numpy(picture)
    return np.concatenate([picture, legend_strip(picture.shape[-1], model, reference)], axis=1)


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
    # the folder that will hold the PNGs (or its parent, which must take the new folder) must take new files
    check_writable((directory if directory.is_dir() else parent) / "overlay_000.png")
    return directory


def write_overlays(
    directory: str | Path, frames, model_points, teacher_points=None, limit: int = 8, model_name: str = "model",
    reference_name: str = "teacher",
) -> list[Path]:
    """Write up to ``limit`` PNGs (``overlay_000.png``, ...) of ``frames`` (a FrameBatch or an
    (N, 3, S, S) tensor) with ``model_points`` (N, K, 2) in red and, when given, ``teacher_points``
    (N, K, 2) in cyan joined to the model's by yellow lines. Creates ``directory`` (not its parents).
    Returns the written paths."""
    directory = check_overlay_dir(directory)
    images = getattr(frames, "images", frames)
    count = min(int(limit), len(images), len(model_points))
    if teacher_points is not None:
        count = min(count, len(teacher_points))
    try:
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise CompressbenchError(f"cannot create overlay folder {directory}: {reason}") from None
    written = []
    for index in range(count):
        reference = None if teacher_points is None else teacher_points[index]
        picture = with_legend(overlay(images[index], model_points[index], reference), model_name, reference_name if teacher_points is not None else None)
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
    "draw_rings",
    "legend_strip",
    "with_legend",
    "overlay",
    "to_uint8_hwc",
    "write_overlays",
]
