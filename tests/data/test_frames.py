"""User frames: folders with good and bad images, single images, videos, and the error cases."""

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from compressbench.data import frames_for, load_frames
from compressbench.data.frames import resize_and_crop, to_rgb_tensor
from compressbench.errors import CompressbenchError, CompressbenchWarning


def _solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


@pytest.fixture
def folder(tmp_path):
    iio.imwrite(tmp_path / "a.png", _solid(40, 60, (200, 100, 50)))
    iio.imwrite(tmp_path / "b.jpg", _solid(64, 32, (10, 220, 30)))
    iio.imwrite(tmp_path / "c.png", np.full((30, 30), 128, dtype=np.uint8))  # greyscale
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    return tmp_path


def test_folder_skips_and_counts_the_unreadable_file(folder):
    with pytest.warns(UserWarning, match="skipped unreadable image .*broken.png"):
        batch = load_frames(folder, size=16)
    assert batch.skipped == 1
    assert batch.images.shape == (3, 3, 16, 16) and batch.images.dtype == torch.float32
    assert batch.landmarks is None and batch.jacobians is None
    # sorted by name: a.png, b.jpg, c.png; a constant picture stays that colour after resizing
    assert torch.allclose(batch.images[0], torch.tensor([200, 100, 50]).view(3, 1, 1) / 255, atol=1e-5)
    assert torch.allclose(batch.images[1].mean((1, 2)), torch.tensor([10, 220, 30]) / 255, atol=0.03)  # jpeg is lossy
    assert torch.allclose(batch.images[2], torch.full((3, 16, 16), 128 / 255), atol=1e-5)


def test_count_limits_frames(folder):
    batch = load_frames(folder, count=2, size=16)
    assert len(batch) == 2 and batch.skipped == 0  # stops before reaching the broken file


def test_single_image_and_rgba(tmp_path):
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    iio.imwrite(tmp_path / "one.png", rgba)
    batch = load_frames(tmp_path / "one.png", size=8)
    assert batch.images.shape == (1, 3, 8, 8)
    assert (
        torch.allclose(batch.images[0, 0], torch.ones(8, 8), atol=1e-6) and batch.images[0, 1:].abs().max() == 0
    )  # alpha dropped


def test_resize_keeps_the_centre_of_the_longer_side():
    picture = torch.zeros(3, 10, 30)
    picture[:, :, 10:20] = 1.0  # a white centre third, black sides
    out = resize_and_crop(picture, 10)
    assert out.shape == (3, 10, 10) and torch.equal(out, torch.ones(3, 10, 10))
    assert resize_and_crop(torch.rand(3, 50, 20), 16).shape == (3, 16, 16)


def test_to_rgb_tensor_scales_sixteen_bit():
    out = to_rgb_tensor(np.full((2, 2), 65535, dtype=np.uint16))
    assert out.shape == (3, 2, 2) and torch.equal(out, torch.ones(3, 2, 2))
    with pytest.raises(ValueError):
        to_rgb_tensor(np.zeros((2, 2, 5), dtype=np.uint8))


def test_video_round_trip(tmp_path):
    path = tmp_path / "clip.mp4"
    with imageio_v2.get_writer(path, format="FFMPEG", fps=10, macro_block_size=16) as writer:
        for i in range(5):
            writer.append_data(_solid(48, 64, (40 * i, 100, 200)))
    batch = load_frames(path, size=32)
    assert batch.images.shape == (5, 3, 32, 32) and batch.skipped == 0 and batch.landmarks is None
    assert abs(float(batch.images[4, 0].mean()) - 160 / 255) < 0.05  # lossy, but the colour survives
    assert len(load_frames(path, count=3, size=32)) == 3


def test_unreadable_video_is_an_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(CompressbenchError, match="could not read video .*broken.mp4"):
        load_frames(path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "frame source .*missing does not exist"),
        (lambda p: p, "holds no png/jpg/jpeg images"),
        (lambda p: (p / "data.csv").write_text("x") and p / "data.csv", "cannot read frames from .*data.csv"),
    ],
    ids=["missing", "empty-folder", "unknown-suffix"],
)
def test_bad_sources_raise_one_clear_error(tmp_path, make, message):
    with pytest.raises(CompressbenchError, match=message):
        load_frames(make(tmp_path))


def test_folder_of_only_broken_images_is_an_error(tmp_path):
    import warnings

    (tmp_path / "x.png").write_bytes(b"nope")
    with warnings.catch_warnings(record=True) as caught, pytest.raises(CompressbenchError, match="none of the 1 image"):
        warnings.simplefilter("always")
        load_frames(tmp_path)
    # the error alone: a "skipped" warning per file would repeat it (one stderr line)
    assert not [w for w in caught if issubclass(w.category, CompressbenchWarning)]


def test_bad_count_is_an_error(folder):
    with pytest.raises(CompressbenchError, match="count must be a positive integer"):
        load_frames(folder, count=0)


def test_frames_for_dispatches(folder):
    synthetic = frames_for("synthetic", 2, split="val", seed=1, size=16)
    assert synthetic.landmarks.shape == (2, 10, 2)
    user = frames_for(str(folder), 2, size=16)
    assert user.landmarks is None and user.images.shape == (2, 3, 16, 16)
