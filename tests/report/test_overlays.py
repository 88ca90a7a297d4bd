"""Keypoint overlays: drawn pixels have the drawing colour; PNG files are written."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from compressbench.errors import CompressbenchError
from compressbench.report.overlays import (
    LINE_COLOUR,
    MODEL_COLOUR,
    REFERENCE_COLOUR,
    default_radius,
    draw_keypoints,
    draw_lines,
    to_uint8_hwc,
    write_overlays,
)


def test_the_pixel_at_a_point_takes_the_colour_and_the_rest_is_untouched():
    image = torch.zeros(3, 32, 32)
    # x = 0.5 -> pixel column (1.5 / 2) * 32 = 24; y = -0.5 -> row 8
    out = draw_keypoints(image, torch.tensor([[0.5, -0.5]]), colour=(0.2, 0.4, 0.6), radius=2)
    # the point is the corner shared by pixels (7|8, 23|24); pixels whose centres lie within 2 px fill
    colour = np.array([0.2, 0.4, 0.6], dtype=np.float32)[:, None]
    filled = [(8, 24), (7, 23), (8, 25), (9, 24)]  # distances 0.71, 0.71, 1.58, 1.58
    empty = [(8, 26), (10, 24), (9, 25), (20, 20)]  # distances 2.55, 2.55, 2.12, far
    rows, cols = zip(*filled, strict=True)
    assert np.allclose(out[:, rows, cols], colour)
    rows, cols = zip(*empty, strict=True)
    assert np.all(out[:, rows, cols] == 0)
    assert int((out[0] > 0).sum()) == 12  # the 12 pixel centres within 2 px of a pixel corner
    assert image.abs().sum() == 0, "the input image must not be modified"


def test_disc_size_matches_the_radius():
    out = draw_keypoints(np.zeros((3, 16, 16), np.float32), np.array([[0.0, 0.0]]), colour=(1, 1, 1), radius=1)
    # the point sits on the corner shared by pixels 7 and 8: the 4 pixel centres at distance sqrt(0.5)
    assert int(out[0].sum()) == 4
    out = draw_keypoints(np.zeros((3, 16, 16), np.float32), np.array([[0.0, 0.0]]), colour=(1, 1, 1), radius=0.1)
    assert int(out[0].sum()) == 1  # a tiny radius still marks the pixel holding the point


def test_points_off_the_image_or_not_finite_draw_nothing_and_do_not_fail():
    out = draw_keypoints(np.zeros((3, 8, 8), np.float32), np.array([[3.0, 3.0], [np.nan, 0.0]]), radius=1)
    assert out.sum() == 0


def test_lines_join_matching_points():
    out = draw_lines(np.zeros((3, 16, 16), np.float32), np.array([[-0.9, 0.0]]), np.array([[0.9, 0.0]]))
    row = out[:, 8, :]
    assert np.allclose(row[:, 1:15], np.array(LINE_COLOUR, dtype=np.float32)[:, None])
    assert out[:, :8].sum() == 0 and out[:, 9:].sum() == 0


def test_to_uint8_clips_and_transposes():
    image = np.zeros((3, 2, 2), np.float32)
    image[0, 0, 1] = 1.5
    image[2, 1, 0] = 0.5
    out = to_uint8_hwc(image)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 1, 0] == 255 and out[1, 0, 2] == 128


def test_write_overlays_writes_pngs_with_both_colours(tmp_path):
    images = torch.zeros(3, 3, 32, 32)
    model_points = torch.tensor([[[0.5, -0.5]]]).repeat(3, 1, 1)
    teacher_points = torch.tensor([[[-0.5, 0.5]]]).repeat(3, 1, 1)
    paths = write_overlays(tmp_path / "overlays", images, model_points, teacher_points, limit=2)
    assert [p.name for p in paths] == ["overlay_000.png", "overlay_001.png"]
    picture = iio.imread(paths[0])
    assert picture.shape[1:] == (32, 3) and picture.shape[0] > 32  # the frame, then its legend strip
    def colour(c):
        return tuple(to_uint8_hwc(np.array(c, np.float32).reshape(3, 1, 1))[0, 0])

    assert tuple(picture[8, 24]) == colour(MODEL_COLOUR)  # a filled disc at the model's point
    # the reference is a ring: its colour around the point (radius 2.5 + 1.5 px at 32 px), not at it
    ring = default_radius(32) + 2.5
    assert tuple(picture[24, 8 + int(ring) - 1]) == colour(REFERENCE_COLOUR)
    assert tuple(picture[24, 8]) != colour(REFERENCE_COLOUR)
    assert tuple(picture[16, 16]) == colour(LINE_COLOUR)
    assert (picture[32:] > 200).mean() > 0.5  # a legend strip under the frame, mostly white


def test_write_overlays_without_a_reference_and_an_existing_file_is_an_error(tmp_path):
    paths = write_overlays(tmp_path, torch.ones(1, 3, 8, 8), torch.zeros(1, 2, 2))
    assert len(paths) == 1 and paths[0].is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(CompressbenchError, match="is a file"):
        write_overlays(tmp_path / "file", torch.ones(1, 3, 8, 8), torch.zeros(1, 2, 2))
    with pytest.raises(CompressbenchError, match="does not exist"):
        write_overlays(tmp_path / "missing" / "deeper", torch.ones(1, 3, 8, 8), torch.zeros(1, 2, 2))
