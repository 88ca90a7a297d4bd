"""Augmentation of training frames: shapes and dtypes kept, one seed one result, and each part doing
what it says (a flip mirrors, a warp moves a feature where its matrix says, jitter stays in range)."""

import pytest
import torch

from compressbench.data import synthetic_frames
from compressbench.data.augment import (
    AUGMENTS,
    AugmentConfig,
    affine_matrices,
    augment_frames,
    flip_frames,
    warp_frames,
)
from compressbench.errors import CompressbenchError

FRAMES = synthetic_frames(4, split="train", seed=0, size=32).images


def draw(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", AUGMENTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_kind_keeps_shape_dtype_and_range_and_is_one_result_per_seed(kind, dtype):
    images = FRAMES.to(dtype)
    out = augment_frames(images, kind, draw(1))
    assert out.shape == images.shape and out.dtype == dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, augment_frames(images, kind, draw(1)))
    if kind == "none":
        assert torch.equal(out, images)
    else:
        assert not torch.equal(out, images)
        assert not torch.equal(out, augment_frames(images, kind, draw(2)))


def test_a_flip_mirrors_the_chosen_frames_only():
    mask = torch.tensor([True, False, True, False])
    out = flip_frames(FRAMES, mask)
    assert torch.equal(out[mask], FRAMES[mask].flip(-1)) and torch.equal(out[~mask], FRAMES[~mask])
    assert torch.equal(augment_frames(FRAMES, "flip", draw(0), AugmentConfig(flip=1.0)), FRAMES.flip(-1))
    assert torch.equal(augment_frames(FRAMES, "flip", draw(0), AugmentConfig(flip=0.0)), FRAMES)


def test_the_identity_warp_keeps_the_frames():
    theta = torch.eye(2, 3, dtype=torch.float64).expand(4, 2, 3)
    assert torch.allclose(warp_frames(FRAMES, theta), FRAMES, atol=1e-6)


def test_a_warp_moves_a_feature_to_where_its_matrix_says():
    """A blob at q in the frame lands at A^-1 (q - b) in the warped frame (what an exactly
    equivariant detector's keypoint would do)."""
    size = 128
    axis = (2 * torch.arange(size, dtype=torch.float64) + 1) / size - 1
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    q = torch.tensor([0.2, -0.3], dtype=torch.float64)
    blob = torch.exp(-((xs - q[0]) ** 2 + (ys - q[1]) ** 2) / (2 * 0.05**2))
    theta = affine_matrices(3, draw(5))
    warped = warp_frames(blob.expand(3, 3, size, size).contiguous(), theta)[:, 0]
    weights = warped / warped.sum((1, 2), keepdim=True)
    centre = torch.stack([(weights * xs).sum((1, 2)), (weights * ys).sum((1, 2))], -1)
    expected = torch.linalg.solve(theta[:, :, :2], (q - theta[:, :, 2])[..., None])[..., 0]
    assert torch.allclose(centre, expected, atol=2 / size)


def test_affine_draws_stay_within_the_configured_ranges():
    config = AugmentConfig(rotation_deg=0.0, zoom=0.0, aspect=0.0, shear=0.0, shift=0.1)
    theta = affine_matrices(64, draw(0), config)
    assert torch.allclose(theta[:, :, :2], torch.eye(2, dtype=torch.float64).expand(64, 2, 2))
    assert theta[:, :, 2].abs().max() <= 0.1


def test_bad_kinds_and_frames_are_one_sentence():
    with pytest.raises(CompressbenchError, match="unknown augment 'mirror'; choose one of: none, flip"):
        augment_frames(FRAMES, "mirror", draw(0))
    with pytest.raises(CompressbenchError, match=r"float frames in \[0, 1\], got \(4, 3, 32, 32\) torch.uint8"):
        augment_frames((FRAMES * 255).to(torch.uint8), "flip", draw(0))
