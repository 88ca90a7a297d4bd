"""Synthetic face-motion frames with exact landmarks and jacobians.

Design
------
A frame is a *canonical face* (``faces.py``) seen through a *pose warp* (``warps.py``) over an
image-space backdrop (``background.py``):

1. Draw unit-cube values per frame (or per clip, ``motion.py``) from a generator seeded by
   (split, seed, stream kind, index) (``seeds.py``): identity, backdrop, lighting, pose, expression,
   thin-plate-spline weights. Splits use disjoint seed streams, so they never share a frame.
2. Paint the canonical face as a premultiplied RGBA texture at the output resolution with soft
   signed-distance shapes (outline, hair, ears, eyes, brows, nose, mouth, chin).
3. The warp is defined backwards, image -> canonical: B(p) = M (x + D(x)), x = p - t, where M undoes
   a similarity/affine pose (rotation, scale, aspect, shear) and D is a FOMM-style thin-plate
   spline on a 5x5 control grid. Rendering evaluates B at every pixel centre (exactly on a 33x33
   lattice, bilinearly in between: ~0.01 px off) and ``grid_sample``s the texture there; then the backdrop is
   composited, a light gradient and sensor noise are applied.
4. Landmarks are canonical feature centres pushed forward by inverting B with Newton steps; the
   jacobian d(image)/d(canonical) at a landmark is the inverse of B's jacobian there. The
   translation t is chosen last, inside the range that keeps every landmark within +-0.88.

Coordinates follow the data contract: (x, y) in [-1, 1], pixel position (u + 1) / 2 * S.

Landmark indices (``num_kp`` keeps the first ``num_kp``; 5 gives the classic eyes/nose/mouth set):
0 left eye centre, 1 right eye centre, 2 nose tip, 3 left mouth corner, 4 right mouth corner,
5 left brow centre, 6 right brow centre, 7 mouth centre, 8 left ear, 9 right ear, 10 chin.
"Left" is the image-left side of an unrotated face (the subject's right).

Sequences (``sequences=True``) are clips of ``sequence_length`` frames sharing identity, backdrop
and lighting while the head turns/tilts smoothly, the eyes blink and the mouth talks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

import compressbench.data.seeds as seeds
from compressbench.data.background import BACKGROUND, GRID_VALUES, LIGHTING, apply_lighting, render_background
from compressbench.data.batch import FrameBatch
from compressbench.data.faces import EXPRESSION, IDENTITY, MAX_KP, canonical_landmarks, render_face
from compressbench.data.motion import DYNAMIC, TPS_POINTS, FrameDraw, clip_draws, independent_draw
from compressbench.data.warps import PoseWarp, control_grid, remove_affine_part
from compressbench.errors import CompressbenchError
from compressbench.progress import progress_bar

SEQUENCE_LENGTH = 8
TPS_SCALE = 0.01  # spline weight scale: bends of a few pixels, jacobians within ~10% of affine
LANDMARK_BOUND = 0.88  # every landmark stays within [-0.88, 0.88]
CHUNK = 16  # frames rendered together
_PROGRESS_FROM = 128  # frames; fewer render in under ~2 s


@dataclass(frozen=True)
class Scenes:
    """Everything needed to render a batch of frames, plus the exact labels (float64)."""

    face: dict[str, torch.Tensor]
    background: dict[str, torch.Tensor]
    grids: torch.Tensor
    lighting: dict[str, torch.Tensor]
    warp: PoseWarp
    landmarks: torch.Tensor  # (B, MAX_KP, 2)
    jacobians: torch.Tensor  # (B, MAX_KP, 2, 2)
    noise_seeds: list[int]

    def __len__(self) -> int:
        return self.landmarks.shape[0]


def _pose_linear(dynamic: dict[str, torch.Tensor]) -> torch.Tensor:
    """Canonical -> image linear map R(rotation) @ [[s(1+a), s*shear], [0, s(1-a)]], (B, 2, 2)."""
    s, a, shear, angle = dynamic["scale"], dynamic["aspect"], dynamic["shear"], dynamic["rotation"]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    zero = torch.zeros_like(s)
    shape = torch.stack([torch.stack([s * (1 + a), s * shear], -1), torch.stack([zero, s * (1 - a)], -1)], -2)
    return rotation @ shape


def _placement(centred: torch.Tensor, unit_x: torch.Tensor, unit_y: torch.Tensor) -> torch.Tensor:
    """Translation (B, 2) that keeps landmarks ``centred`` (B, K, 2) within +-LANDMARK_BOUND."""
    low = -LANDMARK_BOUND - centred.min(dim=1).values
    high = LANDMARK_BOUND - centred.max(dim=1).values
    unit = torch.stack([unit_x, unit_y], -1).to(centred.dtype)
    return torch.where(high >= low, low + unit * (high - low), (low + high) / 2)


def build_scenes(draws: list[FrameDraw]) -> Scenes:
    """Decode per-frame draws into face/backdrop parameters, the warp, landmarks and jacobians."""
    static = torch.stack([d.static for d in draws])
    cut = [IDENTITY.dim, BACKGROUND.dim, GRID_VALUES, LIGHTING.dim]
    identity, backdrop, grids, lighting = torch.split(static, cut, dim=1)
    dynamic = DYNAMIC.decode(torch.stack([d.dynamic for d in draws]))
    face = IDENTITY.decode(identity) | {name: dynamic[name] for name in EXPRESSION.names}

    control = control_grid(TPS_POINTS, torch.float64)
    tps = torch.stack([d.tps for d in draws]).reshape(len(draws), -1, 2).double()
    weights = remove_affine_part(tps, control) * TPS_SCALE
    warp = PoseWarp(_pose_linear(dynamic).double(), torch.zeros(len(draws), 2, dtype=torch.float64), weights, control)
    centred = warp.forward(canonical_landmarks(face).double())
    translation = _placement(centred, dynamic["place_x"], dynamic["place_y"])
    landmarks = centred + translation[:, None, :]
    warp = warp.with_translation(translation)
    return Scenes(
        face,
        BACKGROUND.decode(backdrop),
        grids,
        LIGHTING.decode(lighting),
        warp,
        landmarks,
        warp.forward_jacobian(landmarks),
        [d.noise_seed for d in draws],
    )


def render_scenes(scenes: Scenes, size: int) -> torch.Tensor:
    """(B, 3, size, size) float32 images in [0, 1]."""
    colour, alpha = render_face(scenes.face, size)
    grid = scenes.warp.to(torch.float32).sampling_grid(size)
    # border padding lets the neck and shirt, which touch the texture's bottom edge, run on downwards
    face = F.grid_sample(
        torch.cat([colour, alpha], 1), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    backdrop = render_background(scenes.background, scenes.grids, size)
    images = backdrop * (1 - face[:, 3:]) + face[:, :3]
    return apply_lighting(images, scenes.lighting, scenes.noise_seeds)


def _draws(start: int, count: int, split: str, seed: int, sequences: bool, sequence_length: int) -> list[FrameDraw]:
    """Draws for frames ``start .. start + count - 1`` of the (split, seed) stream."""
    if not sequences:
        return [
            independent_draw(seeds.generator(split, seed, seeds.INDEPENDENT, i)) for i in range(start, start + count)
        ]
    first, last = start // sequence_length, (start + count - 1) // sequence_length
    frames: list[FrameDraw] = []
    for clip in range(first, last + 1):
        frames += clip_draws(seeds.generator(split, seed, seeds.CLIP, clip), sequence_length)
    offset = start - first * sequence_length
    return frames[offset : offset + count]


def _check(count: int, split: str, seed: int, num_kp: int, size: int, sequence_length: int = SEQUENCE_LENGTH) -> None:
    seeds.check_split(split)
    seeds.check_seed(seed)
    for name, value in (("count", count), ("size", size), ("sequence_length", sequence_length)):
        if not isinstance(value, int) or value <= 0:
            raise CompressbenchError(f"{name} must be a positive integer, got {value!r}")
    if size < 16:
        raise CompressbenchError(f"size must be at least 16 pixels, got {size}")
    if not isinstance(num_kp, int) or not 1 <= num_kp <= MAX_KP:
        raise CompressbenchError(f"num_kp must be an integer from 1 to {MAX_KP} for synthetic frames, got {num_kp!r}")


def synthetic_scenes(
    count: int,
    split: str = "test",
    seed: int = 0,
    sequences: bool = False,
    sequence_length: int = SEQUENCE_LENGTH,
    start: int = 0,
) -> Scenes:
    """The scene parameters and exact labels of frames ``start .. start + count - 1`` (all MAX_KP landmarks)."""
    _check(count, split, seed, MAX_KP, 16, sequence_length)
    return build_scenes(_draws(start, count, split, seed, sequences, sequence_length))


def _frames(draws: list[FrameDraw], num_kp: int, size: int, show_progress: bool) -> FrameBatch:
    images = torch.empty(len(draws), 3, size, size)
    landmarks = torch.empty(len(draws), num_kp, 2)
    jacobians = torch.empty(len(draws), num_kp, 2, 2)
    with progress_bar("synthetic frames", total=len(draws), enabled=show_progress) as advance:
        for lo in range(0, len(draws), CHUNK):
            hi = min(lo + CHUNK, len(draws))
            scenes = build_scenes(draws[lo:hi])
            images[lo:hi] = render_scenes(scenes, size)
            landmarks[lo:hi] = scenes.landmarks[:, :num_kp]
            jacobians[lo:hi] = scenes.jacobians[:, :num_kp]
            advance(hi - lo)
    return FrameBatch(images, landmarks, jacobians)


def synthetic_frames(
    count: int,
    split: str = "test",
    seed: int = 0,
    num_kp: int = 10,
    size: int = 256,
    sequences: bool = False,
    sequence_length: int = SEQUENCE_LENGTH,
    start: int = 0,
    show_progress: bool | None = None,
) -> FrameBatch:
    """``count`` synthetic frames with landmarks and jacobians; same arguments -> identical tensors.

    Frame i is the same whatever ``count`` is. With ``sequences`` the frames are consecutive clips of
    ``sequence_length`` frames of one moving face. ``start`` > 0 gives frames ``start ..
    start + count - 1`` of the same stream (``synthetic_frames(start + count)[start:]``, rendering
    only those). ``show_progress`` None shows a progress bar from 128 frames on.
    """
    _check(count, split, seed, num_kp, size, sequence_length)
    if not isinstance(start, int) or start < 0:
        raise CompressbenchError(f"start must be a non-negative integer, got {start!r}")
    draws = _draws(start, count, split, seed, sequences, sequence_length)
    return _frames(draws, num_kp, size, show_progress=count >= _PROGRESS_FROM if show_progress is None else show_progress)


def synthetic_stream(
    batch_size: int, split: str = "train", seed: int = 0, num_kp: int = 10, size: int = 256
) -> Iterator[FrameBatch]:
    """Endless deterministic batches of fresh independent frames (batch b holds frames b*batch_size...)."""
    _check(batch_size, split, seed, num_kp, size)  # here, not in the generator, so bad input fails at once

    def batches() -> Iterator[FrameBatch]:
        start = 0
        while True:
            draws = _draws(start, batch_size, split, seed, False, SEQUENCE_LENGTH)
            yield _frames(draws, num_kp, size, show_progress=False)
            start += batch_size

    return batches()
