"""Synthetic frames: determinism, split separation, exact labels, smooth sequences, argument errors."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from compressbench.data import LANDMARK_NAMES, MAX_KP, SPLITS, FrameBatch, seeds, synthetic_frames, synthetic_stream
from compressbench.data.faces import canonical_landmarks, colours, marker_masks
from compressbench.data.motion import independent_draw
from compressbench.data.synthetic import LANDMARK_BOUND, SEQUENCE_LENGTH, render_scenes, synthetic_scenes
from compressbench.data.warps import pixel_centres
from compressbench.errors import CompressbenchError

SIZE = 32


def _equal(a: FrameBatch, b: FrameBatch) -> bool:
    return all(
        torch.equal(x, y) for x, y in ((a.images, b.images), (a.landmarks, b.landmarks), (a.jacobians, b.jacobians))
    )


def test_shapes_dtypes_and_ranges():
    batch = synthetic_frames(3, size=SIZE)
    assert len(batch) == 3 and batch.skipped == 0
    assert batch.images.shape == (3, 3, SIZE, SIZE) and batch.images.dtype == torch.float32
    assert batch.landmarks.shape == (3, 10, 2) and batch.landmarks.dtype == torch.float32
    assert batch.jacobians.shape == (3, 10, 2, 2) and batch.jacobians.dtype == torch.float32
    assert 0 <= batch.images.min() and batch.images.max() <= 1
    assert batch.images.std() > 0.05  # a picture, not a blank
    assert batch.landmarks.abs().max() <= LANDMARK_BOUND + 1e-6


def test_same_seed_same_tensors_and_frames_do_not_depend_on_count():
    a = synthetic_frames(3, split="val", seed=4, size=SIZE)
    assert _equal(a, synthetic_frames(3, split="val", seed=4, size=SIZE))
    assert _equal(a, synthetic_frames(5, split="val", seed=4, size=SIZE).slice(0, 3))


def test_other_seed_or_split_gives_other_frames():
    a = synthetic_frames(2, split="test", seed=0, size=SIZE)
    for other in (
        synthetic_frames(2, split="train", seed=0, size=SIZE),
        synthetic_frames(2, split="test", seed=1, size=SIZE),
    ):
        assert (a.images - other.images).abs().mean() > 0.05
        assert (a.landmarks - other.landmarks).abs().max() > 0.01


def test_splits_never_share_a_frame():
    drawn = {
        split: {
            tuple(independent_draw(seeds.generator(split, 0, seeds.INDEPENDENT, i)).static[:8].tolist())
            for i in range(300)
        }
        for split in SPLITS
    }
    assert all(len(frames) == 300 for frames in drawn.values())
    assert (
        not (drawn["train"] & drawn["val"])
        and not (drawn["train"] & drawn["test"])
        and not (drawn["val"] & drawn["test"])
    )


def test_num_kp_keeps_the_first_landmarks():
    five = synthetic_frames(2, seed=3, num_kp=5, size=SIZE)
    ten = synthetic_frames(2, seed=3, num_kp=10, size=SIZE)
    assert five.landmarks.shape == (2, 5, 2)
    assert torch.equal(five.landmarks, ten.landmarks[:, :5]) and torch.equal(five.images, ten.images)
    assert len(LANDMARK_NAMES) == MAX_KP == 11 and LANDMARK_NAMES[:5] == (
        "left_eye",
        "right_eye",
        "nose_tip",
        "mouth_left",
        "mouth_right",
    )


def test_landmarks_are_distinct_and_stay_inside_the_image_over_many_poses():
    scenes = synthetic_scenes(200, split="train", seed=9)
    assert scenes.landmarks.abs().max() <= LANDMARK_BOUND + 1e-9
    gaps = torch.cdist(scenes.landmarks, scenes.landmarks) + torch.eye(MAX_KP, dtype=torch.float64) * 10
    assert gaps.min() * 128 > 3  # at 256 px no two landmarks are closer than 3 px
    # Newton converged: pulling the landmarks back lands on the canonical feature centres
    assert torch.allclose(scenes.warp.backward(scenes.landmarks), canonical_landmarks(scenes.face).double(), atol=1e-6)


def test_each_marker_is_centred_on_its_landmark():
    """Warp every landmark's own marker shape into the image: its centroid is the landmark (sub-pixel)."""
    size = 256
    scenes = synthetic_scenes(4, seed=2)
    masks = F.grid_sample(
        marker_masks(scenes.face, size), scenes.warp.to(torch.float32).sampling_grid(size), align_corners=False
    )
    axis = pixel_centres(size)
    mass = masks.sum((-2, -1))
    centroid = torch.stack([(masks.sum(-2) * axis).sum(-1) / mass, (masks.sum(-1) * axis).sum(-1) / mass], -1)
    error_px = (centroid - scenes.landmarks.float()).norm(dim=-1) * size / 2
    assert error_px.max() < 0.3


def test_rendered_pixel_at_each_landmark_is_its_feature():
    """With flat light and no noise, the image at a landmark shows exactly that feature's paint."""
    size = 256
    scenes = synthetic_scenes(6, seed=11)
    flat = {
        name: torch.ones_like(v) if name == "brightness" else torch.zeros_like(v) for name, v in scenes.lighting.items()
    }
    image = render_scenes(dataclasses.replace(scenes, lighting=flat), size)
    at = F.grid_sample(image, scenes.landmarks.float()[:, :, None, :], align_corners=False)[..., 0].transpose(1, 2)
    paint = colours(scenes.face)
    skin = paint["skin"]
    for index, part, tolerance in (
        (2, "nose_tip", 0.01),
        (3, "corner", 0.03),
        (4, "corner", 0.03),
        (5, "brow", 0.01),
        (6, "brow", 0.01),
        (8, "ear_inner", 0.01),
        (9, "ear_inner", 0.01),
        (10, "chin", 0.01),
    ):
        assert (at[:, index] - paint[part]).abs().max() < tolerance, LANDMARK_NAMES[index]
        assert (paint[part] - skin).abs().max(-1).values.min() > 0.05  # and that paint stands out from the skin
    assert at[:, :2].max() < 0.1  # eye centres: pupil, or the lash line when closed
    lips, inside = paint["lip"], paint["inside"]  # mouth centre: lips, the dark opening, or a blend of both
    t = ((at[:, 7] - inside) * (lips - inside)).sum(-1, keepdim=True) / ((lips - inside) ** 2).sum(-1, keepdim=True)
    assert t.min() > -0.01 and t.max() < 1.01
    assert (at[:, 7] - (inside + t * (lips - inside))).abs().max() < 0.01


def test_jacobians_match_finite_differences_of_the_forward_warp():
    scenes = synthetic_scenes(3, seed=5)
    canonical, h = canonical_landmarks(scenes.face).double(), 1e-4
    columns = [
        (scenes.warp.forward(canonical + h * e) - scenes.warp.forward(canonical - h * e)) / (2 * h)
        for e in torch.eye(2, dtype=torch.float64)
    ]
    numeric = torch.stack(columns, -1)
    assert (scenes.jacobians - numeric).abs().max() < 1e-6
    frames = synthetic_frames(3, seed=5, num_kp=MAX_KP, size=SIZE)
    assert torch.allclose(frames.jacobians, scenes.jacobians.float())
    assert torch.allclose(frames.landmarks, scenes.landmarks.float())


def test_sequences_share_identity_and_move_smoothly():
    count = 2 * SEQUENCE_LENGTH
    clip = synthetic_frames(count, seed=1, size=SIZE, sequences=True)
    scenes = synthetic_scenes(count, seed=1, sequences=True)
    first = slice(0, SEQUENCE_LENGTH)
    assert torch.equal(scenes.face["skin_tone"][first], scenes.face["skin_tone"][0].expand(SEQUENCE_LENGTH))
    assert scenes.face["skin_tone"][0] != scenes.face["skin_tone"][SEQUENCE_LENGTH]  # the next clip is someone else
    step = (clip.landmarks[1:] - clip.landmarks[:-1]).norm(dim=-1).mean(-1)
    within = torch.cat([step[: SEQUENCE_LENGTH - 1], step[SEQUENCE_LENGTH:]])
    independent = synthetic_frames(count, seed=1, size=SIZE)
    jumps = (independent.landmarks[1:] - independent.landmarks[:-1]).norm(dim=-1).mean(-1)
    assert within.max() < 0.2 * jumps.mean()
    assert within.max() * 128 < 5  # under 5 px per frame at 256
    # consecutive frames look alike too
    assert (clip.images[1] - clip.images[0]).abs().mean() < 0.5 * (
        independent.images[1] - independent.images[0]
    ).abs().mean()
    # a prefix is the same whatever the count
    assert _equal(synthetic_frames(3, seed=1, size=SIZE, sequences=True), clip.slice(0, 3))


def test_stream_is_deterministic_and_fresh():
    stream = synthetic_stream(2, seed=6, size=SIZE)
    first, second = next(stream), next(stream)
    assert _equal(first, synthetic_frames(2, split="train", seed=6, size=SIZE))
    assert _equal(second, synthetic_frames(4, split="train", seed=6, size=SIZE).slice(2, 4))
    assert (first.images - second.images).abs().mean() > 0.05


def test_batch_slice_and_to():
    batch = synthetic_frames(3, size=SIZE)
    part = batch.slice(1, 3)
    assert (
        len(part) == 2
        and torch.equal(part.landmarks, batch.landmarks[1:3])
        and torch.equal(part.jacobians, batch.jacobians[1:])
    )
    moved = batch.to("cpu")
    assert moved.images.device.type == "cpu" and torch.equal(moved.images, batch.images)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "training"}, "unknown split 'training'; use one of train, val, test"),
        ({"count": 0}, "count must be a positive integer"),
        ({"num_kp": 12}, "num_kp must be an integer from 1 to 11"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"size": 8}, "size must be at least 16 pixels"),
    ],
)
def test_bad_arguments_raise_one_clear_error(kwargs, message):
    arguments = {"count": 1, "size": SIZE} | kwargs
    with pytest.raises(CompressbenchError, match=message):
        synthetic_frames(**arguments)


def test_stream_checks_arguments_before_the_first_batch():
    with pytest.raises(CompressbenchError, match="unknown split"):
        synthetic_stream(2, split="nope")
