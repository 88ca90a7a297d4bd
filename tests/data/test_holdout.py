import imageio.v3 as iio
import numpy as np
import pytest
import torch

from compressbench.data import FrameSource, load_frames
from compressbench.errors import CompressbenchError


def test_synthetic_evaluation_and_calibration_come_from_disjoint_splits():
    source = FrameSource("synthetic", eval_count=2, seed=0, size=32)
    evaluation = source.evaluation().images
    calibration = source.calibration(2)
    assert evaluation.shape == calibration.shape == (2, 3, 32, 32)
    assert not any(torch.equal(e, c) for e in evaluation for c in calibration)
    assert torch.equal(FrameSource("synthetic", 2, 0, 32).evaluation().images, evaluation)  # deterministic


def test_a_folder_holds_out_its_first_frames_for_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        iio.imwrite(tmp_path / f"{i:02d}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    source = FrameSource(str(tmp_path), eval_count=2, size=16)
    everything = load_frames(tmp_path, size=16).images
    assert torch.equal(source.evaluation().images, everything[:2])
    assert torch.equal(source.calibration(3), everything[2:5])
    with pytest.raises(CompressbenchError, match="has 5 frames, but 2 are held out"):
        source.calibration(4)
    with pytest.raises(CompressbenchError, match="--frames asks for 6"):
        FrameSource(str(tmp_path), eval_count=6, size=16).evaluation()


def test_calibration_frames_read_at_an_offset_are_the_same_frames():
    source = FrameSource("synthetic", eval_count=2, seed=0, size=32)
    # bit for bit where the offset is a multiple of the renderer's 16-frame chunk
    assert torch.equal(source.calibration_at(16, 20), source.calibration(36)[16:])
    assert torch.equal(source.calibration_at(0, 2), source.calibration(2))
    # elsewhere the same frames, but a soft shape edge is painted within a window that spans the
    # frames rendered together, so a few pixels can differ (as between calibration(4) and calibration(7)[:4])
    near, far = source.calibration_at(3, 4), source.calibration(7)[3:]
    assert (near - far).abs().mean() < 1e-3 and (near != far).float().mean() < 0.01
    with pytest.raises(CompressbenchError, match="non-negative index"):
        source.calibration_at(-1, 2)


def test_a_folder_read_at_an_offset_skips_its_held_out_frames_and_ends(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(6):
        iio.imwrite(tmp_path / f"{i:02d}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    source = FrameSource(str(tmp_path), eval_count=2, size=16)
    everything = load_frames(tmp_path, size=16).images
    assert torch.equal(source.calibration_at(1, 2), everything[3:5])
    assert torch.equal(source.calibration_at(3, 5), everything[5:6])  # fewer at the end
    assert source.calibration_at(4, 2).shape == (0, 3, 16, 16)  # none past it
    assert torch.equal(load_frames(tmp_path, 2, size=16, start=1).images, everything[1:3])
    with pytest.raises(CompressbenchError, match="start must be a non-negative integer"):
        load_frames(tmp_path, 2, size=16, start=-1)
